"""Captures: an order is PAID only by a verified capture of exactly what its open session owes.

Any other capture is recorded and refunded automatically.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import Order, OrderStatus, Payment, PaymentStatus, RefundReason
from joycart.resolvers import capture_rows, state_rows, states
from joycart.resolvers.payment_sessions import OPEN_SESSION_STATES
from joycart.resolvers.refunds import create_refund, owe_refund_call

log = logging.getLogger("joycart.payments")


async def _lock_session(
    session: AsyncSession, razorpay_order_id: object
) -> tuple[Order, Payment] | None:
    """The order and its payment session locked, as detached copies (see `capture_rows`)."""
    if not isinstance(razorpay_order_id, str):
        return None
    return await capture_rows.lock_session(await session.connection(), razorpay_order_id)


async def apply_capture_event(session: AsyncSession, entity: dict[str, Any], event_id: int) -> str:
    conn = await session.connection()
    locked = await _lock_session(session, entity.get("order_id"))
    if locked is None:
        log.warning(
            "capture %s for an unknown Razorpay order %s", entity.get("id"), entity.get("order_id")
        )
        return "unknown razorpay order"
    order, payment = locked
    gateway_payment_id = str(entity.get("id"))
    amount, currency = entity.get("amount"), entity.get("currency")
    why_not: str | None = None
    if not isinstance(amount, int) or amount != payment.amount or currency != payment.currency:
        why_not = f"captured {amount} {currency}, session owes {payment.amount} {payment.currency}"
    elif order.status is not OrderStatus.PENDING_PAYMENT:
        why_not = f"order is {order.status.value}"
    elif payment.status not in OPEN_SESSION_STATES:
        why_not = f"payment session is {payment.status.value}"
    now = datetime.now(UTC)
    capture = await capture_rows.insert_capture(
        conn,
        payment,
        gateway_payment_id,
        amount=amount if isinstance(amount, int) else 0,
        currency=str(currency),
        owed=why_not is None,
        now=now,
    )
    if capture is None:
        return "duplicate capture"
    actor = f"webhook:{event_id}"
    if why_not is None:
        await capture_rows.mark_items_paid(conn, order.id)
        async with state_rows.row_moves(
            conn, order.id, actor=actor, webhook_event_id=event_id
        ) as moves:
            await moves.move(
                Payment,
                payment.id,
                payment.status,
                PaymentStatus.CAPTURED,
                kind="PAYMENT_CAPTURED",
                columns={"razorpay_payment_id": gateway_payment_id, "updated_at": now},
                razorpay_payment_id=gateway_payment_id,
                amount=amount,
            )
            await moves.move(
                Order,
                order.id,
                order.status,
                OrderStatus.PAID,
                kind="ORDER_PAID",
                columns={"paid_at": now, "updated_at": now},
            )
        return "paid"
    session.add_all((order, payment))  # the rest goes through the unit of work, a rare path
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
    session.add_all((order, payment))
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
