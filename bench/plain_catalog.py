"""The catalogue's yardstick: `products(first: N)`'s three SQL statements (the page of products,
the sellers by id, the images by product id), written by hand behind one Starlette route, on
the same engine settings, answering the same JSON as GraphQL's `data` (bench/catalog.py
compares the two before measuring)."""

from __future__ import annotations

import base64
import sys
from collections import defaultdict
from typing import Any

import orjson
from _harness import HOST


def plain_app(database_url: str) -> Any:
    from sqlalchemy import ARRAY, Uuid, any_, bindparam, select
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from joycart.db import make_engine
    from joycart.models import Product, ProductImage, User

    engine = make_engine(database_url)
    products = Product.__table__.c
    users = User.__table__.c
    images = ProductImage.__table__.c
    keys = bindparam("keys", type_=ARRAY(Uuid()))
    page_of = (
        select(
            products.id,
            products.seller_id,
            products.name,
            products.description,
            products.price,
            products.currency,
            products.stock,
            products.created_at,
        )
        .where(products.deleted_at.is_(None))
        .order_by(products.created_at.desc(), products.id.desc())
    )
    sellers_of = select(users.id, users.email, users.name, users.role).where(users.id == any_(keys))
    images_of = (
        select(images.id, images.product_id, images.url)
        .where(images.product_id == any_(keys))
        .order_by(images.created_at, images.id)
    )

    def cursor(created_at: Any, row_id: Any) -> str:
        raw = f"{created_at.isoformat()}|{row_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    async def products_page(request: Request) -> Response:
        first = int(orjson.loads(await request.body()).get("first", 20))
        async with engine.connect() as conn:
            rows = (await conn.execute(page_of.limit(first + 1))).all()
            page = rows[:first]
            seller_ids = list(dict.fromkeys(r.seller_id for r in page))
            sellers = {r.id: r for r in await conn.execute(sellers_of, {"keys": seller_ids})}
            by_product: dict[Any, list[Any]] = defaultdict(list)
            for r in await conn.execute(images_of, {"keys": [p.id for p in page]}):
                by_product[r.product_id].append(r)
        edges = [
            {
                "cursor": cursor(p.created_at, p.id),
                "node": {
                    "id": str(p.id),
                    "name": p.name,
                    "description": p.description,
                    "price": {"amount": p.price, "currency": p.currency},
                    "stock": p.stock,
                    "seller": {"id": str(p.seller_id), "name": sellers[p.seller_id].name},
                    "images": [{"id": str(i.id), "url": i.url} for i in by_product[p.id]],
                },
            }
            for p in page
        ]
        body = {
            "products": {
                "edges": edges,
                "pageInfo": {
                    "hasNextPage": len(rows) > first,
                    "endCursor": edges[-1]["cursor"] if edges else None,
                },
            }
        }
        return Response(orjson.dumps(body), media_type="application/json")

    return Starlette(routes=[Route("/products", products_page, methods=["POST"])])


def main() -> None:
    """`plain_catalog.py PORT DATABASE_URL` (bench/catalog.py starts it)."""
    import uvicorn

    port, database_url = int(sys.argv[1]), sys.argv[2]
    app = plain_app(database_url)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
