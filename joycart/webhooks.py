"""`POST /webhooks/razorpay`: verify the raw bytes, record the event, apply it, answer fast.

Razorpay signs the raw body (HMAC-SHA256, hex) with the webhook secret. The event-id header is
not signed, so deduplication keys on the SHA-256 of the signed body. Applying is idempotent
anyway: a duplicate, a reordering or a replay converges to the same state.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from joycart.bootstrap import Services
from joycart.db import Sessions
from joycart.models import WebhookEvent
from joycart.models.base import utcnow
from joycart.resolvers import jobs, payments

log = logging.getLogger("joycart.webhooks")


def signature_is_valid(body: bytes, signature: str | None, secret: str) -> bool:
    if not signature or len(signature) != 64 or not signature.isascii():
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


async def record_event(
    sessions: Sessions, body: bytes, payload: dict[str, Any], event_id: str | None
) -> tuple[int, bool]:
    """Store the event once; returns its row id and whether it was already applied."""
    async with sessions() as session, session.begin():
        row = (
            await session.execute(
                insert(WebhookEvent)
                .values(
                    body_sha256=hashlib.sha256(body).digest(),
                    event_type=str(payload.get("event", ""))[:80],
                    event_id_header=event_id[:80] if event_id else None,
                    payload=payload,
                    deliveries=1,
                )
                .on_conflict_do_update(
                    index_elements=[WebhookEvent.body_sha256],
                    set_={"deliveries": WebhookEvent.deliveries + 1},
                )
                .returning(WebhookEvent.id, WebhookEvent.processed_at)
            )
        ).one()
    return row.id, row.processed_at is not None


async def apply_recorded(
    sessions: Sessions, event_row_id: int, *, lock_timeout_ms: int | None = None
) -> str:
    """Apply a recorded event under row locks, at most once."""
    async with sessions() as session, session.begin():
        if lock_timeout_ms is not None:
            await session.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
        event = await session.get_one(WebhookEvent, event_row_id, with_for_update=True)
        if event.processed_at is not None:
            return event.outcome or "already applied"
        outcome = await payments.apply_event(
            session, event_type=event.event_type, payload=event.payload, event_id=event.id
        )
        event.outcome = outcome[:500]
        event.processed_at = utcnow()
    log.info("webhook %s (%s): %s", event_row_id, event.event_type, outcome)
    return outcome


async def razorpay_webhook(request: Request, services: Services) -> Response:
    body = await request.body()
    signature = request.headers.get("x-razorpay-signature")
    if not signature_is_valid(body, signature, services.webhook_secret):
        log.warning("webhook refused: bad or missing signature")
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    if not isinstance(payload, dict):
        return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
    row_id, applied = await record_event(
        services.sessions, body, payload, request.headers.get("x-razorpay-event-id")
    )
    if applied:
        return JSONResponse({"status": "duplicate"})
    try:
        # Razorpay wants an answer within 5 s: if the order is locked for long, the worker
        # applies the recorded event instead.
        outcome = await apply_recorded(services.sessions, row_id, lock_timeout_ms=2000)
    except Exception as exc:  # recorded already: the worker applies it later, no retry needed
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03":
            log.warning("webhook %s waits for a locked order; queued for the worker", row_id)
        else:
            log.exception("webhook %s recorded but not applied; queued for the worker", row_id)
        async with services.sessions() as session, session.begin():
            await jobs.enqueue(
                session,
                jobs.APPLY_WEBHOOK,
                {"event_row_id": row_id},
                dedupe_key=f"webhook:{row_id}",
            )
        return JSONResponse({"status": "queued"}, status_code=202)
    return JSONResponse({"status": "ok", "outcome": outcome})
