"""Razorpay's `refund.processed` outranks a FAILED we concluded ourselves.

A refund we marked FAILED that Razorpay reports processed becomes REFUNDED. If it was already asked
again (`retryRefund`), the two would refund the same units twice: a retry not yet sent is cancelled
before any call; a retry that may have been sent is left alone and the conflict is written to the
order's history as `REFUND_CONFLICT` (the marker `joycart reconcile` lists), never silently.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import Order, Refund, RefundStatus
from joycart.resolvers import jobs, states

CONFLICT_KIND = "REFUND_CONFLICT"
SUPERSEDED = "superseded: original refund processed"


async def processed_after_failed(
    session: AsyncSession, order: Order, refund: Refund, *, actor: str, event_id: int
) -> str:
    """Settle a locally FAILED refund as REFUNDED; cancel or flag a retry of it."""
    retry = await session.scalar(
        select(Refund).where(Refund.retry_of_id == refund.id).with_for_update()
    )
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
        overrules="FAILED",
    )
    if retry is None:
        return "refunded (was FAILED)"
    # submit_refund counts an attempt under the refund's row lock before it calls Razorpay, so
    # zero attempts (and no Razorpay id) means the retry has certainly not been sent.
    unsent = (
        retry.status is RefundStatus.INITIATED
        and retry.gateway_attempts == 0
        and retry.gateway_refund_id is None
    )
    if unsent:
        retry.failure_reason = SUPERSEDED
        retry.settled_at = datetime.now(UTC)
        states.move(
            session, order, retry, RefundStatus.FAILED, kind="REFUND_FAILED", actor=actor,
            webhook_event_id=event_id, reason=SUPERSEDED,
        )  # fmt: skip
        await jobs.settle(session, f"refund:{retry.id}")
        resolution = "retry cancelled before it was sent"
    else:
        resolution = f"retry already sent ({retry.status.value}): refunded twice unless it fails"
    states.record(
        session,
        order,
        CONFLICT_KIND,
        actor=actor,
        subject=refund,
        webhook_event_id=event_id,
        retry_refund_id=str(retry.id),
        retry_gateway_refund_id=retry.gateway_refund_id,
        amount=refund.amount,
        resolution=resolution,
    )
    return f"refunded (was FAILED); {resolution}"
