"""The rows a checkout reads and writes, through statements built once and sent on the
session's own connection: no ORM unit of work, no identity map, no statement built per call.

Checkout is the hottest write path. Profiled under load (bench/README.md, "Checkout: profile
findings and changes"), building each statement, generating its cache key and flushing rows that
are only ever inserted cost more server CPU than the round trips themselves. The rows written
here are the same as an ORM flush writes; the rules (locks, guards, order of statements) stay
in `checkout.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from joycart.models import (
    CartItem,
    Order,
    OrderItem,
    OrderItemStatus,
    Product,
    StockMovement,
    StockReason,
    User,
)
from joycart.models.base import detached


class Line(NamedTuple):
    """One cart line, priced from the database at checkout."""

    product_id: uuid.UUID
    seller_id: uuid.UUID
    name: str
    price: int
    currency: str
    quantity: int


# NO KEY UPDATE: the foreign-key checks of the buyer's own cancels (KEY SHARE) are not blocked.
_LOCK_BUYER = select(User.id).where(User.id == bindparam("buyer")).with_for_update(key_share=True)
# The cart as `cart.view_cart` reads it (deleted products drop out), only the columns used.
_CART_LINES = (
    select(
        Product.id,
        Product.seller_id,
        Product.name,
        Product.price,
        Product.currency,
        CartItem.quantity,
    )
    .join(CartItem, CartItem.product_id == Product.id)
    .where(CartItem.user_id == bindparam("buyer"), Product.deleted_at.is_(None))
    .order_by(CartItem.added_at, Product.id)
)
_ORDERS = Order.__table__
_EXISTING = select(_ORDERS).where(
    Order.buyer_id == bindparam("buyer"), Order.idempotency_key == bindparam("key")
)
_INSERT_ORDER = insert(Order)
# One guarded statement per product: never a read-check-write in Python.
_TAKE_STOCK = (
    update(Product)
    .where(
        Product.id == bindparam("product"),
        Product.deleted_at.is_(None),
        Product.stock >= bindparam("at_least"),
    )
    .values(stock=Product.stock - bindparam("take"), updated_at=bindparam("now"))
    .returning(Product.id)
)
_INSERT_LEDGER = insert(StockMovement)
_INSERT_ITEMS = insert(OrderItem)
_CLEAR_CART = delete(CartItem).where(CartItem.user_id == bindparam("buyer"))


async def lock_buyer(conn: AsyncConnection, buyer_id: uuid.UUID) -> None:
    await conn.execute(_LOCK_BUYER, {"buyer": buyer_id})


async def cart_lines(conn: AsyncConnection, buyer_id: uuid.UUID) -> list[Line]:
    return [Line._make(row) for row in await conn.execute(_CART_LINES, {"buyer": buyer_id})]


async def existing_order(conn: AsyncConnection, buyer_id: uuid.UUID, key: str) -> Order | None:
    """The order this buyer placed with this key, as a detached copy of its row."""
    row = (await conn.execute(_EXISTING, {"buyer": buyer_id, "key": key})).one_or_none()
    return None if row is None else detached(Order, row._mapping)


async def insert_order(conn: AsyncConnection, values: dict[str, Any]) -> Order:
    """Write the order row; returns a detached copy of it for the answer."""
    await conn.execute(_INSERT_ORDER, values)
    return detached(Order, values)


async def take_stock(conn: AsyncConnection, line: Line, now: datetime) -> bool:
    """Take the line's units if the product is live and has them; False if it has not."""
    taken = await conn.scalar(
        _TAKE_STOCK,
        {"product": line.product_id, "at_least": line.quantity, "take": line.quantity, "now": now},
    )
    return taken is not None


async def insert_lines(
    conn: AsyncConnection,
    order: Order,
    lines: Sequence[Line],
    *,
    actor_id: uuid.UUID,
    now: datetime,
) -> list[OrderItem]:
    """The ledger rows of the stock taken and the order's items, in `lines` order (positions).

    Returns detached copies of the items as written (the answer shows them without a re-read).
    """
    await conn.execute(
        _INSERT_LEDGER,
        [
            {
                "product_id": line.product_id,
                "delta": -line.quantity,
                "reason": StockReason.CHECKOUT,
                "order_id": order.id,
                "actor_id": actor_id,
                "created_at": now,
            }
            for line in lines
        ],
    )
    items = [
        {
            "id": uuid.uuid4(),
            "order_id": order.id,
            "product_id": line.product_id,
            "seller_id": line.seller_id,
            "product_name": line.name,
            "unit_price": line.price,
            "currency": line.currency,
            "quantity": line.quantity,
            "cancelled_quantity": 0,
            "paid_quantity": None,
            "shipped_quantity": 0,
            "delivered_quantity": 0,
            "return_requested_quantity": 0,
            "returned_quantity": 0,
            "status": OrderItemStatus.ACTIVE,
            "position": position,
            "created_at": now,
        }
        for position, line in enumerate(lines)
    ]
    await conn.execute(_INSERT_ITEMS, items)
    return [detached(OrderItem, values) for values in items]


async def clear_cart(conn: AsyncConnection, buyer_id: uuid.UUID) -> None:
    await conn.execute(_CLEAR_CART, {"buyer": buyer_id})
