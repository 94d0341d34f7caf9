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

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from joycart.models import Capture, Order, OrderItem, Payment
from joycart.models.base import detached

_ORDERS = Order.__table__
_PAYMENTS = Payment.__table__
_ORDER_OF = select(Payment.order_id).where(Payment.razorpay_order_id == bindparam("rzp"))
_LOCK_ORDER = select(_ORDERS).where(Order.id == bindparam("order")).with_for_update()
_LOCK_PAYMENT = (
    select(_PAYMENTS).where(Payment.razorpay_order_id == bindparam("rzp")).with_for_update()
)
_CAPTURE_SEEN = select(Capture.id).where(Capture.gateway_payment_id == bindparam("pay"))
_INSERT_CAPTURE = insert(Capture)
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
    order_id = await conn.scalar(_ORDER_OF, {"rzp": razorpay_order_id})
    if order_id is None:
        return None
    order = (await conn.execute(_LOCK_ORDER, {"order": order_id})).one()
    payment = (await conn.execute(_LOCK_PAYMENT, {"rzp": razorpay_order_id})).one()
    return detached(Order, order._mapping), detached(Payment, payment._mapping)


async def capture_seen(conn: AsyncConnection, gateway_payment_id: str) -> bool:
    return await conn.scalar(_CAPTURE_SEEN, {"pay": gateway_payment_id}) is not None


async def insert_capture(
    conn: AsyncConnection,
    payment: Payment,
    gateway_payment_id: str,
    *,
    amount: int,
    currency: str,
    owed: bool,
    now: datetime,
) -> Capture:
    """Write the capture row; returns a detached copy of it."""
    values = {
        "id": uuid.uuid4(),
        "payment_id": payment.id,
        "gateway_payment_id": gateway_payment_id,
        "amount": amount,
        "currency": currency,
        "owed": owed,
        "created_at": now,
    }
    await conn.execute(_INSERT_CAPTURE, values)
    return detached(Capture, values)


async def mark_items_paid(conn: AsyncConnection, order_id: uuid.UUID) -> None:
    await conn.execute(_ITEMS_PAID, {"order": order_id})
