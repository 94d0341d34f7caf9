"""Payment sessions and refunds at Razorpay, and what Razorpay's webhooks do to them.

Rules:
- A session's Razorpay order is created once: under an advisory lock, looked up by receipt before
  any second attempt. The committed `gateway_attempts` says whether a call may have happened.
- An order is PAID only by a verified capture of exactly what its open session owes. Any other
  capture is recorded and refunded automatically.
- A refund is created INITIATED in the same transaction as its cause, submitted afterwards with
  `X-Refund-Idempotency`, and settled only by `refund.processed` / `refund.failed`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.errors import GatewayUnavailable
from joycart.integrations import razorpay as rzp
from joycart.models import (
    Capture,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundReason,
    RefundStatus,
)
from joycart.resolvers import jobs, states
from joycart.resolvers.locks import external_call_lock

log = logging.getLogger("joycart.payments")

OPEN_SESSION_STATES = (PaymentStatus.CREATED, PaymentStatus.FAILED)


def receipt_for(order: Order, sequence: int) -> str:
    return str(order.id) if sequence == 1 else f"{order.id}/{sequence}"


async def current_session(
    session: AsyncSession, order_id: uuid.UUID, *, lock: bool = False
) -> Payment:
    """The order's newest payment session (every order has at least one)."""
    stmt = (
        select(Payment)
        .where(Payment.order_id == order_id)
        .order_by(Payment.sequence.desc())
        .limit(1)
    )
    payment = await session.scalar(stmt.with_for_update() if lock else stmt)
    assert payment is not None, "every order has a payment session"
    return payment


async def new_session(
    session: AsyncSession, *, order: Order, sequence: int, amount: int
) -> Payment:
    """A payment session for what the order owes now, and the job that owes its Razorpay order."""
    payment = Payment(
        id=uuid.uuid4(),
        order_id=order.id,
        sequence=sequence,
        receipt=receipt_for(order, sequence),
        amount=amount,
        currency=order.currency,
        status=PaymentStatus.CREATED,
        gateway_attempts=0,
    )
    session.add(payment)
    await session.flush()
    await jobs.enqueue(
        session,
        jobs.CREATE_GATEWAY_ORDER,
        {"payment_id": str(payment.id)},
        dedupe_key=f"gateway-order:{payment.id}",
    )
    return payment


async def open_gateway_session(
    sessions: Sessions, gateway: rzp.PaymentGateway, payment_id: uuid.UUID, *, wait: bool
) -> Payment:
    """Make sure the session has exactly one Razorpay order; raise `GatewayUnavailable` if not."""
    async with external_call_lock(sessions, f"gateway-order:{payment_id}", wait=wait) as locked:
        sessions = locked
        async with sessions() as session, session.begin():
            payment = await session.get_one(Payment, payment_id)
            if payment.razorpay_order_id or payment.status not in OPEN_SESSION_STATES:
                return payment
            order = await session.get_one(Order, payment.order_id)
            earlier_attempts = payment.gateway_attempts
            payment.gateway_attempts += 1
        try:
            found: rzp.GatewayOrder | None = None
            if earlier_attempts:
                # An earlier call may have created it and lost the answer: look before creating.
                candidates = await gateway.find_orders_by_receipt(payment.receipt)
                found = next((o for o in candidates if o.amount == payment.amount), None)
            created = found or await gateway.create_order(
                amount=payment.amount,
                currency=payment.currency,
                receipt=payment.receipt,
                notes={"joycart_order_id": str(order.id), "joycart_payment_id": str(payment.id)},
            )
        except rzp.GatewayError as exc:
            async with sessions() as session, session.begin():
                row = await session.get_one(Payment, payment_id)
                row.last_gateway_error = str(exc)[:500]
            raise GatewayUnavailable(
                "Razorpay could not be reached; your order is saved. Retry checkout with the "
                "same idempotency key in a moment."
            ) from exc
        async with sessions() as session, session.begin():
            # Order first, then its payment: the lock order of every other writer.
            order = await session.get_one(Order, payment.order_id, with_for_update=True)
            row = await session.get_one(Payment, payment_id, with_for_update=True)
            row.razorpay_order_id = created.id
            row.last_gateway_error = None
            await jobs.settle(session, f"gateway-order:{payment_id}")
            states.record(
                session,
                order,
                "PAYMENT_SESSION_OPENED",
                actor="system",
                subject=row,
                razorpay_order_id=created.id,
                amount=row.amount,
                found_by_receipt=found is not None,
            )
            return row


def create_refund(
    session: AsyncSession,
    *,
    order: Order,
    capture: Capture,
    amount: int,
    reason: RefundReason,
    order_item_id: uuid.UUID | None = None,
    quantity: int = 0,
    note: str | None = None,
) -> Refund:
    refund = Refund(
        id=uuid.uuid4(),
        order_id=order.id,
        order_item_id=order_item_id,
        capture_id=capture.id,
        quantity=quantity,
        amount=amount,
        currency=capture.currency,
        reason=reason,
        status=RefundStatus.INITIATED,
        gateway_attempts=0,
        note=note,
    )
    session.add(refund)
    return refund


async def owe_refund_call(session: AsyncSession, refund: Refund) -> None:
    await session.flush()
    await jobs.enqueue(
        session, jobs.SUBMIT_REFUND, {"refund_id": str(refund.id)}, dedupe_key=f"refund:{refund.id}"
    )


async def _call_answered(session: AsyncSession, refund: Refund) -> tuple[Order, Refund]:
    """Razorpay answered our refund call: lock order, then refund, and settle the owed job."""
    order = await session.get_one(Order, refund.order_id, with_for_update=True)
    row = await session.get_one(Refund, refund.id, with_for_update=True)
    await jobs.settle(session, f"refund:{refund.id}")
    return order, row


async def submit_refund(
    sessions: Sessions, gateway: rzp.PaymentGateway, refund_id: uuid.UUID, *, wait: bool
) -> Refund:
    """Ask Razorpay for an INITIATED refund once; a definite refusal makes it FAILED."""
    async with external_call_lock(sessions, f"refund:{refund_id}", wait=wait) as locked:
        sessions = locked
        async with sessions() as session, session.begin():
            refund = await session.get_one(Refund, refund_id)
            if refund.gateway_refund_id or refund.status is not RefundStatus.INITIATED:
                return refund
            capture = await session.get_one(Capture, refund.capture_id)
            earlier_attempts = refund.gateway_attempts
            refund.gateway_attempts += 1
        try:
            found: rzp.GatewayRefund | None = None
            if earlier_attempts:
                existing = await gateway.list_refunds(capture.gateway_payment_id)
                found = next(
                    (r for r in existing if r.notes.get("joycart_refund_id") == str(refund.id)),
                    None,
                )
            answer = found or await gateway.create_refund(
                payment_id=capture.gateway_payment_id,
                amount=refund.amount,
                receipt=refund.id.hex[:40],
                notes={
                    "joycart_refund_id": str(refund.id),
                    "joycart_order_id": str(refund.order_id),
                },
                idempotency_key=refund.idempotency_key,
            )
        except rzp.GatewayRejected as exc:
            async with sessions() as session, session.begin():
                order, row = await _call_answered(session, refund)
                if row.status is RefundStatus.INITIATED and row.gateway_refund_id is None:
                    row.failure_reason = f"Razorpay refused the refund: {exc}"[:500]
                    row.settled_at = datetime.now(UTC)
                    states.move(
                        session,
                        order,
                        row,
                        RefundStatus.FAILED,
                        kind="REFUND_FAILED",
                        actor="system",
                        reason=row.failure_reason,
                    )
                return row
        except rzp.GatewayUnavailable as exc:
            log.warning("refund %s not submitted yet: %s", refund_id, exc)
            raise GatewayUnavailable(
                "Razorpay could not be reached; the refund will be retried."
            ) from exc
        async with sessions() as session, session.begin():
            order, row = await _call_answered(session, refund)
            if row.gateway_refund_id is None:
                row.gateway_refund_id = answer.id
                states.record(
                    session,
                    order,
                    "REFUND_SUBMITTED",
                    actor="system",
                    subject=row,
                    gateway_refund_id=answer.id,
                    amount=row.amount,
                )
            return row


# --- webhooks -------------------------------------------------------------------------------


def _entity(payload: dict[str, Any], name: str) -> dict[str, Any] | None:
    try:
        entity = payload["payload"][name]["entity"]
    except (KeyError, TypeError):
        return None
    return entity if isinstance(entity, dict) else None


async def apply_event(
    session: AsyncSession, *, event_type: str, payload: dict[str, Any], event_id: int
) -> str:
    """Apply one verified webhook under row locks; returns what it did, for the inbox row."""
    if event_type in ("payment.captured", "order.paid"):
        payment = _entity(payload, "payment")
        if payment is None or payment.get("status") != "captured":
            return "ignored: payment not captured in this snapshot"
        return await _apply_capture(session, payment, event_id)
    if event_type == "payment.failed":
        payment = _entity(payload, "payment")
        return await _apply_payment_failed(session, payment or {}, event_id)
    if event_type.startswith("refund."):
        refund = _entity(payload, "refund")
        return await _apply_refund(session, refund or {}, event_id)
    return f"ignored: event type {event_type}"


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


async def _apply_capture(session: AsyncSession, entity: dict[str, Any], event_id: int) -> str:
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


async def _apply_payment_failed(
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


async def _apply_refund(session: AsyncSession, entity: dict[str, Any], event_id: int) -> str:
    gateway_refund_id = entity.get("id")
    notes = entity.get("notes")
    ours = notes.get("joycart_refund_id") if isinstance(notes, dict) else None
    refund: Refund | None = None
    if isinstance(gateway_refund_id, str):
        refund = await session.scalar(
            select(Refund).where(Refund.gateway_refund_id == gateway_refund_id)
        )
    if refund is None and isinstance(ours, str):
        try:
            refund = await session.get(Refund, uuid.UUID(ours))
        except ValueError:
            refund = None
    if refund is None:
        return "unknown refund"
    order = await session.get_one(
        Order, refund.order_id, with_for_update=True, populate_existing=True
    )
    refund = await session.get_one(Refund, refund.id, with_for_update=True, populate_existing=True)
    if refund.gateway_refund_id is None and isinstance(gateway_refund_id, str):
        refund.gateway_refund_id = gateway_refund_id
    elif refund.gateway_refund_id != gateway_refund_id:
        return f"refund id mismatch: ours is {refund.gateway_refund_id}"
    status = entity.get("status")
    actor = f"webhook:{event_id}"
    if refund.status is not RefundStatus.INITIATED:
        return f"already {refund.status.value}"
    if status == "processed":
        refund.settled_at = datetime.now(UTC)
        states.move(
            session,
            order,
            refund,
            RefundStatus.REFUNDED,
            kind="REFUND_PROCESSED",
            actor=actor,
            webhook_event_id=event_id,
            amount=refund.amount,
        )
        return "refunded"
    if status == "failed":
        refund.failure_reason = "Razorpay reported the refund failed"
        refund.settled_at = datetime.now(UTC)
        states.move(
            session,
            order,
            refund,
            RefundStatus.FAILED,
            kind="REFUND_FAILED",
            actor=actor,
            webhook_event_id=event_id,
            amount=refund.amount,
        )
        return "refund failed"
    return f"refund still {status}"
