"""Refunds at Razorpay: created INITIATED with their cause, then submitted, settled by webhook.

A refund is created in the same transaction as its cause, submitted afterwards with
`X-Refund-Idempotency`, and settled only by `refund.processed` / `refund.failed`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.errors import GatewayUnavailable
from joycart.integrations import razorpay as rzp
from joycart.models import (
    Capture,
    Order,
    Refund,
    RefundReason,
    RefundStatus,
)
from joycart.resolvers import jobs, refund_conflicts, states
from joycart.resolvers.locks import Lease, external_call_lock

log = logging.getLogger("joycart.payments")


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


async def _call_answered(
    session: AsyncSession, lease: Lease, refund: Refund
) -> tuple[Order, Refund]:
    """Razorpay answered our call: while the lease is ours, lock order then refund, settle job."""
    await lease.confirm(session)
    order = await session.get_one(Order, refund.order_id, with_for_update=True)
    row = await session.get_one(Refund, refund.id, with_for_update=True)
    await jobs.settle(session, f"refund:{refund.id}")
    return order, row


async def find_ours(
    gateway: rzp.PaymentGateway, payment_id: str, refund_id: uuid.UUID
) -> rzp.GatewayRefund | None:
    """Our refund at Razorpay, matched by the id we put in its notes (raises GatewayUnknown)."""
    existing = await gateway.list_refunds(payment_id)
    return next((r for r in existing if r.notes.get("joycart_refund_id") == str(refund_id)), None)


def _unavailable(refund_id: uuid.UUID, exc: Exception) -> GatewayUnavailable:
    log.warning("refund %s not settled at Razorpay yet: %s", refund_id, exc)
    return GatewayUnavailable("Razorpay's answer is unknown; the refund will be retried.")


async def _refused(lease: Lease, refund: Refund, exc: Exception) -> Refund:
    async with lease.sessions() as session, session.begin():
        order, row = await _call_answered(session, lease, refund)
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


async def submit_refund(
    sessions: Sessions, gateway: rzp.PaymentGateway, refund_id: uuid.UUID, *, wait: bool
) -> Refund:
    """Ask Razorpay for an INITIATED refund once; only a confirmed definite refusal FAILs it."""
    async with external_call_lock(sessions, f"refund:{refund_id}", wait=wait) as lease:
        sessions = lease.sessions
        async with sessions() as session, session.begin():
            # Row-locked: a webhook cancelling an unsent retry sees either no attempt or this one.
            refund = await session.get_one(
                Refund, refund_id, with_for_update=True, populate_existing=True
            )
            if refund.gateway_refund_id or refund.status is not RefundStatus.INITIATED:
                return refund
            capture = await session.get_one(Capture, refund.capture_id)
            earlier_attempts = refund.gateway_attempts
            refund.gateway_attempts += 1
        try:
            found: rzp.GatewayRefund | None = None
            if earlier_attempts:
                found = await find_ours(gateway, capture.gateway_payment_id, refund.id)
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
        except rzp.GatewayRefused as exc:
            # A refusal fails the refund only once Razorpay's own list shows none of ours.
            try:
                found = await find_ours(gateway, capture.gateway_payment_id, refund.id)
            except rzp.GatewayUnknown as lookup:
                raise _unavailable(refund_id, lookup) from lookup
            if found is None:
                return await _refused(lease, refund, exc)
            answer = found
        except rzp.GatewayUnknown as exc:
            # 409, timeouts, 5xx, odd bodies: stay INITIATED; the job retries with the same key.
            raise _unavailable(refund_id, exc) from exc
        async with sessions() as session, session.begin():
            order, row = await _call_answered(session, lease, refund)
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


async def apply_refund_event(session: AsyncSession, entity: dict[str, Any], event_id: int) -> str:
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
    if refund.status is RefundStatus.FAILED and status == "processed":
        return await refund_conflicts.processed_after_failed(
            session, order, refund, actor=actor, event_id=event_id
        )
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
