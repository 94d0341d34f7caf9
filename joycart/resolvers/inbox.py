"""The webhook inbox: every verified event stored once, then applied once under row locks.

Razorpay's webhooks, and what reconciliation learns from Razorpay's API, both come through here,
so there is one code path from "Razorpay says" to our state.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert

from joycart.db import Sessions
from joycart.models import WebhookEvent
from joycart.models.base import utcnow
from joycart.observability import metrics
from joycart.resolvers import payments

log = logging.getLogger("joycart.webhooks")


# The inbox's statements, built once (every webhook sends all three).
_RECORD = (
    insert(WebhookEvent)
    .on_conflict_do_update(
        index_elements=[WebhookEvent.body_sha256],
        set_={"deliveries": WebhookEvent.deliveries + 1},
    )
    .returning(WebhookEvent.id, WebhookEvent.processed_at)
)
_LOCK = (
    select(
        WebhookEvent.event_type,
        WebhookEvent.payload,
        WebhookEvent.outcome,
        WebhookEvent.processed_at,
    )
    .where(WebhookEvent.id == bindparam("row"))
    .with_for_update()
)
_SETTLE = update(WebhookEvent).where(WebhookEvent.id == bindparam("row"))


async def record_event(
    sessions: Sessions, body: bytes, payload: dict[str, Any], event_id: str | None
) -> tuple[int, bool]:
    """Store the event once; returns its row id and whether it was already applied."""
    now = utcnow()
    async with sessions() as session, session.begin():
        conn = await session.connection()
        row = (
            await conn.execute(
                _RECORD,
                {
                    "body_sha256": hashlib.sha256(body).digest(),
                    "event_type": str(payload.get("event", ""))[:80],
                    "event_id_header": event_id[:80] if event_id else None,
                    "payload": payload,
                    "deliveries": 1,
                    "received_at": now,
                    "updated_at": now,
                },
            )
        ).one()
    return row.id, row.processed_at is not None


async def apply_recorded(
    sessions: Sessions, event_row_id: int, *, lock_timeout_ms: int | None = None
) -> str:
    """Apply a recorded event under row locks, at most once."""
    async with sessions() as session, session.begin():
        conn = await session.connection()
        if lock_timeout_ms is not None:
            await conn.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
        event = (await conn.execute(_LOCK, {"row": event_row_id})).one()
        if event.processed_at is not None:
            metrics.webhook_received(event.event_type, "duplicate")
            return event.outcome or "already applied"
        outcome = await payments.apply_event(
            session, event_type=event.event_type, payload=event.payload, event_id=event_row_id
        )
        await conn.execute(
            _SETTLE,
            {"row": event_row_id, "outcome": outcome[:500], "processed_at": utcnow()},
        )
    log.info("webhook %s (%s): %s", event_row_id, event.event_type, outcome)
    metrics.webhook_applied(event.event_type, event.payload.get("created_at"), outcome)
    return outcome
