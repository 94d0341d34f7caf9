"""The checkout yardstick's plain route: JoyCart's statements for a checkout, by hand.

A Starlette app on `joycart.db.make_engine` that sends, with SQLAlchemy Core `text()`, the
statements JoyCart sends for a checkout, in the same transactions: the access token's account;
then the buyer row `FOR NO KEY UPDATE`, the cart, the idempotency read, the default address,
the order, each product's guarded stock update in id order, the ledger and item rows (one
`executemany` each), the payment session, the job that owes its Razorpay order, the cart
delete, the ORDER_PLACED event;
then, in one transaction, the call lease and the attempt claimed (one `UPDATE ... RETURNING` of
the open session); the same razorpay SDK `order.create` against the same simulated Razorpay;
then, in one transaction, the result under the lease (order and payment `FOR UPDATE`, the job
settled, the current session, the Razorpay order id, PAYMENT_SESSION_OPENED) and the lease
released. The answer is built from the rows written, as JoyCart's is (it primes its loaders
with them). New orders only. `checkout_yardstick.py` starts it in its own uvicorn process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from _harness import HOST
from _plain_checkout_sql import SQL

CONFIG_ENV = "JOYCART_BENCH_CHECKOUT_CONFIG"
WINDOW = timedelta(minutes=30)  # joycart's default payment_window_minutes


def plain_app(database_url: str, config: dict[str, str]) -> Any:
    import razorpay
    from sqlalchemy import text
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from joycart.db import make_engine
    from joycart.security import decode_access_token

    engine = make_engine(database_url)
    sql = {name: text(statement) for name, statement in SQL.items()}
    local = threading.local()

    def sdk() -> Any:  # one SDK client per worker thread, as JoyCart's gateway keeps them
        client = getattr(local, "client", None)
        if client is None:
            client = razorpay.Client(
                auth=(config["key_id"], config["key_secret"]), base_url=config["url"]
            )
            client.set_app_details({"title": "JoyCart", "version": "0.1.0"})
            version = client._get_version()
            client._get_version = lambda: version
            local.client = client
        return client

    def error(code: str, message: str) -> Response:
        return JSONResponse({"order": None, "errors": [{"code": code, "message": message}]})

    async def checkout(request: HttpRequest) -> Response:
        auth = request.headers.get("authorization", "")
        claims = decode_access_token(config["jwt_secret"], auth.removeprefix("Bearer "))
        key = str(orjson.loads(await request.body())["key"])
        async with engine.connect() as conn:
            user = (await conn.execute(sql["user"], {"id": claims.user_id})).one_or_none()
        if user is None or user.token_version != claims.token_version or user.role != "USER":
            return JSONResponse({"error": "unauthenticated"}, status_code=401)
        now = datetime.now(UTC)
        order_id, payment_id = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(sql["buyer_lock"], {"id": user.id})
            cart = (await conn.execute(sql["cart"], {"buyer": user.id})).all()
            fingerprint = hashlib.sha256(
                ";".join(
                    f"{pid}:{qty}" for pid, qty in sorted((r.id, r.quantity) for r in cart)
                ).encode()
            ).hexdigest()
            if await conn.scalar(sql["existing"], {"buyer": user.id, "key": key}):
                raise NotImplementedError("the yardstick places new orders only")
            if not cart:
                return error("CART_EMPTY", "Your cart is empty.")
            if await conn.scalar(sql["address"], {"buyer": user.id}):
                raise NotImplementedError("the yardstick's buyers have no address")
            total = sum(r.price * r.quantity for r in cart)
            await conn.execute(
                sql["order"],
                {
                    "id": order_id,
                    "buyer": user.id,
                    "total": total,
                    "key": key,
                    "fingerprint": fingerprint,
                    "expires": now + WINDOW,
                    "now": now,
                },
            )
            lines = sorted(cart, key=lambda r: r.id)
            for r in lines:
                taken = await conn.scalar(sql["take"], {"qty": r.quantity, "now": now, "id": r.id})
                if taken is None:
                    await conn.rollback()
                    return error("OUT_OF_STOCK", f"Not enough {r.name!r} in stock.")
            await conn.execute(
                sql["ledger"],
                [
                    {
                        "product": r.id,
                        "delta": -r.quantity,
                        "order": order_id,
                        "buyer": user.id,
                        "now": now,
                    }
                    for r in lines
                ],
            )
            await conn.execute(
                sql["item"],
                [
                    {
                        "id": uuid.uuid4(),
                        "order": order_id,
                        "product": r.id,
                        "seller": r.seller_id,
                        "name": r.name,
                        "price": r.price,
                        "currency": r.currency,
                        "quantity": r.quantity,
                        "position": i,
                        "now": now,
                    }
                    for i, r in enumerate(lines)
                ],
            )
            await conn.execute(
                sql["payment"],
                {
                    "id": payment_id,
                    "order": order_id,
                    "receipt": str(order_id),
                    "amount": total,
                    "now": now,
                },
            )
            await conn.execute(
                sql["job"],
                {
                    "payload": json.dumps({"payment_id": str(payment_id)}),
                    "key": f"gateway-order:{payment_id}",
                    "run_at": now + timedelta(seconds=5),
                    "now": now,
                },
            )
            await conn.execute(sql["cart_delete"], {"buyer": user.id})
            await conn.execute(
                sql["event"],
                {
                    "order": order_id,
                    "kind": "ORDER_PLACED",
                    "subject": "ORDER",
                    "subject_id": order_id,
                    "actor": f"user:{user.id}",
                    "detail": json.dumps({"total": total, "idempotency_key": key}),
                    "now": now,
                },
            )
        lease_key, token = f"gateway-order:{payment_id}", uuid.uuid4()
        async with engine.begin() as conn:  # the lease, and the attempt claimed under it
            if await conn.scalar(sql["lease_take"], {"key": lease_key, "token": token}) != token:
                raise NotImplementedError("the yardstick's leases are never contended")
            claim = {"now": datetime.now(UTC), "id": payment_id}
            payment = (await conn.execute(sql["claim"], claim)).one()
        try:
            data = {
                "amount": payment.amount,
                "currency": payment.currency,
                "receipt": payment.receipt,
                "notes": {"joycart_order_id": str(order_id), "joycart_payment_id": str(payment_id)},
            }
            created = await asyncio.to_thread(
                lambda: sdk().order.create(data, timeout=float(config["timeout"]))
            )
            async with engine.begin() as conn:  # the result, and the lease released with it
                if await conn.scalar(sql["lease_confirm"], {"key": lease_key}) != token:
                    raise NotImplementedError("the yardstick's leases are never taken over")
                await conn.execute(sql["order_lock"], {"id": order_id})
                await conn.execute(sql["payment_lock"], {"id": payment_id})
                await conn.execute(sql["settle"], {"now": datetime.now(UTC), "key": lease_key})
                current = (await conn.execute(sql["current"], {"order": order_id})).one()
                assert current.id == payment_id
                now = datetime.now(UTC)
                await conn.execute(
                    sql["opened"], {"rzp": created["id"], "now": now, "id": payment_id}
                )
                await conn.execute(
                    sql["event"],
                    {
                        "order": order_id,
                        "kind": "PAYMENT_SESSION_OPENED",
                        "subject": "PAYMENT",
                        "subject_id": payment_id,
                        "actor": "system",
                        "detail": json.dumps(
                            {
                                "razorpay_order_id": created["id"],
                                "amount": payment.amount,
                                "found_by_receipt": False,
                            }
                        ),
                        "now": now,
                    },
                )
                await conn.execute(sql["lease_drop"], {"key": lease_key, "token": token})
        except BaseException:
            async with engine.begin() as conn:
                await conn.execute(sql["lease_drop"], {"key": lease_key, "token": token})
            raise
        order = {
            "id": str(order_id),
            "status": "PENDING_PAYMENT",
            "total": {"amount": total, "currency": "INR"},
            "items": [{"quantity": r.quantity} for r in lines],
            "payment": {
                "status": "CREATED",
                "amount": {"amount": payment.amount},
                "razorpayOrderId": created["id"],
            },
        }
        return JSONResponse({"order": order, "errors": []})

    return Starlette(routes=[Route("/checkout", checkout, methods=["POST"])])


def main() -> None:
    """`plain_checkout.py PORT DATABASE_URL`, its secrets and simulator URL in the environment."""
    import uvicorn

    port, database_url = int(sys.argv[1]), sys.argv[2]
    app = plain_app(database_url, json.loads(os.environ[CONFIG_ENV]))
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
