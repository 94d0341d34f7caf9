"""What Razorpay's verified webhooks do to our payments: one entry point for every event type.

The rules live with their aggregates: `payment_sessions` (what an order owes and its Razorpay
order), `captures` (what pays an order) and `refunds` (money going back).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.resolvers.captures import apply_capture_event, apply_payment_failed_event
from joycart.resolvers.refunds import apply_refund_event


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
        return await apply_capture_event(session, payment, event_id)
    if event_type == "payment.failed":
        payment = _entity(payload, "payment")
        return await apply_payment_failed_event(session, payment or {}, event_id)
    if event_type.startswith("refund."):
        refund = _entity(payload, "refund")
        return await apply_refund_event(session, refund or {}, event_id)
    return f"ignored: event type {event_type}"
