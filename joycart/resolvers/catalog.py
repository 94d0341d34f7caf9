"""Products and stock: sellers change only their own; every stock change is a ledger row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.errors import Forbidden, InvalidInput, NotFound
from joycart.models import (
    CartItem,
    Product,
    ProductImage,
    Role,
    StockMovement,
    StockReason,
    User,
)
from joycart.models.catalog import MAX_PRICE, MAX_STOCK, MIN_PRICE
from joycart.resolvers import jobs
from joycart.resolvers.pages import Page, Position, newest_first_rows

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_SEARCH = 100


def _require_seller(actor: User) -> None:
    if actor.role is not Role.SELLER:
        raise Forbidden("Only a seller account can manage products.")


def _price(value: int) -> int:
    return validation.int_range(
        value, field="price", low=MIN_PRICE, high=MAX_PRICE, label="Price (paise)"
    )


async def own_product(
    session: AsyncSession, *, seller: User, product_id: str, lock: bool = False
) -> Product:
    """The seller's live product; another seller's looks exactly like a missing one."""
    _require_seller(seller)
    pid = validation.parse_id(product_id, field="productId", what="product")
    stmt = select(Product).where(
        Product.id == pid, Product.seller_id == seller.id, Product.deleted_at.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update()
    product = await session.scalar(stmt)
    if product is None:
        raise NotFound("No product with that ID among yours.", field="productId")
    return product


async def create_product(
    session: AsyncSession, *, seller: User, name: str, description: str, price: int, stock: int
) -> Product:
    """A seller lists a product; its opening stock is the ledger's first row."""
    _require_seller(seller)
    product = Product(
        id=uuid.uuid4(),
        seller_id=seller.id,
        name=validation.text(name, field="name", min_len=1, max_len=MAX_NAME, label="Name"),
        description=validation.text(
            description,
            field="description",
            min_len=0,
            max_len=MAX_DESCRIPTION,
            label="Description",
        ),
        price=_price(price),
        currency="INR",
        stock=validation.int_range(stock, field="stock", low=0, high=MAX_STOCK, label="Stock"),
    )
    session.add(product)
    await session.flush()
    if stock:
        session.add(
            StockMovement(
                product_id=product.id, delta=stock, reason=StockReason.INITIAL, actor_id=seller.id
            )
        )
    await session.flush()
    await session.refresh(product)
    return product


async def update_product(
    session: AsyncSession,
    *,
    seller: User,
    product_id: str,
    name: str | None,
    description: str | None,
    price: int | None,
) -> Product:
    """Edit name, description or price; orders already placed keep their own snapshot."""
    if name is None and description is None and price is None:
        raise InvalidInput("Give at least one of name, description or price.", field="input")
    product = await own_product(session, seller=seller, product_id=product_id, lock=True)
    if name is not None:
        product.name = validation.text(
            name, field="name", min_len=1, max_len=MAX_NAME, label="Name"
        )
    if description is not None:
        product.description = validation.text(
            description,
            field="description",
            min_len=0,
            max_len=MAX_DESCRIPTION,
            label="Description",
        )
    if price is not None:
        product.price = _price(price)
    await session.flush()
    await session.refresh(product)
    return product


async def delete_product(session: AsyncSession, *, seller: User, product_id: str) -> uuid.UUID:
    """Hide a product from browsing and carts; order history keeps its snapshot."""
    product = await own_product(session, seller=seller, product_id=product_id, lock=True)
    product.deleted_at = datetime.now(UTC)
    await session.execute(delete(CartItem).where(CartItem.product_id == product.id))
    images = (
        await session.scalars(select(ProductImage).where(ProductImage.product_id == product.id))
    ).all()
    for image in images:
        await forget_image(session, image)
    return product.id


async def forget_image(session: AsyncSession, image: ProductImage) -> None:
    """Drop the row now; the stored file is deleted by a job once this commits."""
    await session.delete(image)
    await jobs.enqueue(
        session,
        jobs.DELETE_IMAGE,
        {"store": image.store.value, "key": image.key},
        dedupe_key=f"image:{image.key}",
        delay=jobs.FIRST_RETRY * 0,
    )


async def adjust_stock(
    session: AsyncSession, *, seller: User, product_id: str, delta: int
) -> Product:
    """Move stock by `delta` in one guarded statement: never below zero, never lost to a race."""
    product = await own_product(session, seller=seller, product_id=product_id)
    if delta == 0 or abs(delta) > MAX_STOCK:
        raise InvalidInput(
            f"delta must be a non-zero number between -{MAX_STOCK} and {MAX_STOCK}.", field="delta"
        )
    new_stock = await session.scalar(
        update(Product)
        .where(
            Product.id == product.id,
            Product.stock + delta >= 0,
            Product.stock + delta <= MAX_STOCK,
        )
        .values(stock=Product.stock + delta)
        .returning(Product.stock)
    )
    if new_stock is None:
        current = await session.scalar(select(Product.stock).where(Product.id == product.id))
        if delta < 0:
            raise InvalidInput(f"Only {current} in stock: cannot remove {-delta}.", field="delta")
        raise InvalidInput(f"Stock cannot exceed {MAX_STOCK}.", field="delta")
    session.add(
        StockMovement(
            product_id=product.id, delta=delta, reason=StockReason.ADJUSTMENT, actor_id=seller.id
        )
    )
    await session.flush()
    await session.refresh(product)
    return product


class ProductCard(NamedTuple):
    """A product as a catalogue page shows it: plain columns, no ORM object (a page of 50 ORM
    objects cost more CPU than the rest of its SQL)."""

    id: uuid.UUID
    seller_id: uuid.UUID
    name: str
    description: str
    price: int
    currency: str
    stock: int
    created_at: datetime


_PRODUCTS = Product.__table__.c
_CARD_COLUMNS = [_PRODUCTS[name] for name in ProductCard._fields]


async def list_products(
    session: AsyncSession,
    *,
    first: int,
    after: Position | None,
    search: str | None,
    seller_id: str | None,
) -> Page[ProductCard]:
    """Live products, newest first, optionally by name (trigram index) or seller."""
    stmt = select(*_CARD_COLUMNS).where(_PRODUCTS.deleted_at.is_(None))
    if search is not None and search.strip():
        term = search.strip().lower()[:MAX_SEARCH]
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(func.lower(_PRODUCTS.name).like(f"%{escaped}%", escape="\\"))
    if seller_id is not None:
        try:
            sid = uuid.UUID(seller_id)
        except ValueError:  # no seller has that ID, so none of their products exist
            return Page(rows=[], has_next=False)
        stmt = stmt.where(_PRODUCTS.seller_id == sid)
    return await newest_first_rows(
        session, stmt, _PRODUCTS, ProductCard._make, first=first, after=after
    )


async def get_product(session: AsyncSession, *, product_id: str) -> Product | None:
    try:
        pid = uuid.UUID(product_id)
    except ValueError:
        return None
    return await session.scalar(
        select(Product).where(Product.id == pid, Product.deleted_at.is_(None))
    )
