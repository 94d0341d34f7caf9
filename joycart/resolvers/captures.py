"""Captures: an order is PAID only by a verified capture of exactly what its open session owes.

Any other capture is recorded and refunded automatically.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import (
    Capture,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    RefundReason,
)
from joycart.resolvers import states
from joycart.resolvers.payment_sessions import OPEN_SESSION_STATES
from joycart.resolvers.refunds import create_refund, owe_refund_call

log = logging.getLogger("joycart.payments")


async def _lock_session(
    session: AsyncSession, razorpay_order_id: object
) -> tuple[Order, Payment] | None:
    if not isinstance(razorpay_order_id, str):
        return None
    order_id = await session.scalar(
        select(Payment.order_id).where(Payment.razorpay_order_id == razorpay_order_id)
    )
    if order_id is None:
        return None
    # Lock order first, then its rows: the same order as every other writer.
    order = await session.get_one(Order, order_id, with_for_update=True, populate_existing=True)
    payment = await session.scalar(
        select(Payment)
        .where(Payment.razorpay_order_id == razorpay_order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert payment is not None
    return order, payment


async def apply_capture_event(session: AsyncSession, entity: dict[str, Any], event_id: int) -> str:
    locked = await _lock_session(session, entity.get("order_id"))
    if locked is None:
        log.warning(
            "capture %s for an unknown Razorpay order %s", entity.get("id"), entity.get("order_id")
        )
        return "unknown razorpay order"
    order, payment = locked
    gateway_payment_id = str(entity.get("id"))
    if await session.scalar(
        select(Capture.id).where(Capture.gateway_payment_id == gateway_payment_id)
    ):
        return "duplicate capture"
    amount, currency = entity.get("amount"), entity.get("currency")
    why_not: str | None = None
    if not isinstance(amount, int) or amount != payment.amount or currency != payment.currency:
        why_not = f"captured {amount} {currency}, session owes {payment.amount} {payment.currency}"
    elif order.status is not OrderStatus.PENDING_PAYMENT:
        why_not = f"order is {order.status.value}"
    elif payment.status not in OPEN_SESSION_STATES:
        why_not = f"payment session is {payment.status.value}"
    capture = Capture(
        id=uuid.uuid4(),
        payment_id=payment.id,
        gateway_payment_id=gateway_payment_id,
        amount=amount if isinstance(amount, int) else 0,
        currency=str(currency),
        owed=why_not is None,
    )
    session.add(capture)
    await session.flush()
    actor = f"webhook:{event_id}"
    if why_not is None:
        payment.razorpay_payment_id = gateway_payment_id
        order.paid_at = datetime.now(UTC)
        await session.execute(
            update(OrderItem)
            .where(OrderItem.order_id == order.id)
            .values(paid_quantity=OrderItem.quantity - OrderItem.cancelled_quantity)
        )
        states.move(
            session,
            order,
            payment,
            PaymentStatus.CAPTURED,
            kind="PAYMENT_CAPTURED",
            actor=actor,
            webhook_event_id=event_id,
            razorpay_payment_id=gateway_payment_id,
            amount=amount,
        )
        states.move(
            session,
            order,
            order,
            OrderStatus.PAID,
            kind="ORDER_PAID",
            actor=actor,
            webhook_event_id=event_id,
        )
        return "paid"
    states.record(
        session,
        order,
        "CAPTURE_NOT_OWED",
        actor=actor,
        subject=payment,
        webhook_event_id=event_id,
        razorpay_payment_id=gateway_payment_id,
        reason=why_not,
    )
    if capture.amount >= 100:
        refund = create_refund(
            session,
            order=order,
            capture=capture,
            amount=capture.amount,
            reason=RefundReason.UNOWED_CAPTURE,
            note=why_not,
        )
        await owe_refund_call(session, refund)
        states.record(
            session,
            order,
            "AUTOMATIC_REFUND_INITIATED",
            actor=actor,
            subject=refund,
            webhook_event_id=event_id,
            amount=refund.amount,
        )
    return f"not owed ({why_not}); refunded automatically"


async def apply_payment_failed_event(
    session: AsyncSession, entity: dict[str, Any], event_id: int
) -> str:
    locked = await _lock_session(session, entity.get("order_id"))
    if locked is None:
        return "unknown razorpay order"
    order, payment = locked
    details: dict[str, Any] = {
        "actor": f"webhook:{event_id}",
        "webhook_event_id": event_id,
        "razorpay_payment_id": entity.get("id"),
        "reason": entity.get("error_description"),
    }
    if states.can_move(payment, PaymentStatus.FAILED):  # an open session stays payable
        states.move(
            session, order, payment, PaymentStatus.FAILED, kind="PAYMENT_ATTEMPT_FAILED", **details
        )
    else:  # a failed attempt after a capture never un-pays it
        states.record(session, order, "PAYMENT_ATTEMPT_FAILED", subject=payment, **details)
    return f"attempt failed; session {payment.status.value}"
