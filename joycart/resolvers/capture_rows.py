"""The rows a capture locks, reads and writes, through statements built once and sent on the
session's own connection: no ORM loading, no unit of work, no statement built per webhook.

A verified `payment.captured` is the hottest webhook. Profiled under load (bench/webhook.py),
the ORM's loads of the order and payment session, the flush of the capture and the unit of
work at commit cost more server CPU than the statements themselves. The rows written here are
the ones the ORM wrote; the rules (lock order, what is owed) stay in `captures.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from joycart.models import Capture, Order, OrderItem, Payment
from joycart.models.base import detached

_ORDERS = Order.__table__
_PAYMENTS = Payment.__table__
# The order of this Razorpay order's payment session, locked; the order id is read by the same
# statement (a session never changes order; the payment row is not locked by it).
_LOCK_ORDER = (
    select(_ORDERS)
    .where(
        Order.id
        == select(Payment.order_id)
        .where(Payment.razorpay_order_id == bindparam("rzp"))
        .scalar_subquery()
    )
    .with_for_update(of=_ORDERS)
)
_LOCK_PAYMENT = (
    select(_PAYMENTS).where(Payment.razorpay_order_id == bindparam("rzp")).with_for_update()
)
# A gateway payment id already recorded is a duplicate delivery: nothing is written, and the
# insert tells (no row returned), without a lookup of its own.
_INSERT_CAPTURE = (
    insert(Capture)
    .on_conflict_do_nothing(index_elements=[Capture.gateway_payment_id])
    .returning(Capture.id)
)
# Units still active when the order is paid: every one cancelled later is refunded.
_ITEMS_PAID = (
    update(OrderItem)
    .where(OrderItem.order_id == bindparam("order"))
    .values(paid_quantity=OrderItem.quantity - OrderItem.cancelled_quantity)
)


async def lock_session(
    conn: AsyncConnection, razorpay_order_id: str
) -> tuple[Order, Payment] | None:
    """The order, then the payment session of this Razorpay order, each locked `FOR UPDATE`
    (the order first: the same order as every other writer), as detached copies of their rows;
    None for a Razorpay order that is not ours."""
    order = (await conn.execute(_LOCK_ORDER, {"rzp": razorpay_order_id})).one_or_none()
    if order is None:
        return None
    payment = (await conn.execute(_LOCK_PAYMENT, {"rzp": razorpay_order_id})).one()
    return detached(Order, order._mapping), detached(Payment, payment._mapping)


async def insert_capture(
    conn: AsyncConnection,
    payment: Payment,
    gateway_payment_id: str,
    *,
    amount: int,
    currency: str,
    owed: bool,
    now: datetime,
) -> Capture | None:
    """Write the capture row; returns a detached copy of it, or None (and writes nothing) if
    this gateway payment id has a capture already."""
    values = {
        "id": uuid.uuid4(),
        "payment_id": payment.id,
        "gateway_payment_id": gateway_payment_id,
        "amount": amount,
        "currency": currency,
        "owed": owed,
        "created_at": now,
    }
    if await conn.scalar(_INSERT_CAPTURE, values) is None:
        return None
    return detached(Capture, values)


async def mark_items_paid(conn: AsyncConnection, order_id: uuid.UUID) -> None:
    await conn.execute(_ITEMS_PAID, {"order": order_id})
