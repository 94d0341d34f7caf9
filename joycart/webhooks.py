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
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from joycart.bootstrap import Services
from joycart.observability import logs, metrics
from joycart.resolvers import jobs
from joycart.resolvers.inbox import apply_recorded, record_event

log = logging.getLogger("joycart.webhooks")


def signature_is_valid(body: bytes, signature: str | None, secret: str) -> bool:
    if not signature or len(signature) != 64 or not signature.isascii():
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def webhook_log_ids(payload: dict[str, Any], event_id: str | None) -> dict[str, object]:
    """What a verified event says about itself, for the log lines written while applying it.

    Our ids travel in the notes we gave Razorpay; the order id is bound again by the order event
    log once the event is matched to an order.
    """
    ids: dict[str, object] = {"webhook_event_id": event_id, "webhook_event": payload.get("event")}
    entities = payload.get("payload")
    for name, key in (("refund", "refund_id"), ("payment", None)):
        holder = entities.get(name) if isinstance(entities, dict) else None
        entity = holder.get("entity") if isinstance(holder, dict) else None
        notes = entity.get("notes") if isinstance(entity, dict) else None
        if not isinstance(notes, dict):
            continue
        if not isinstance(ids.get("order_id"), str):
            ids["order_id"] = notes.get("joycart_order_id")
        if key is not None:
            ids[key] = notes.get("joycart_refund_id")
    return {k: v for k, v in ids.items() if isinstance(v, str)}


async def razorpay_webhook(request: Request, services: Services) -> Response:
    body = await request.body()
    signature = request.headers.get("x-razorpay-signature")
    if not signature_is_valid(body, signature, services.webhook_secret):
        log.warning("webhook refused: bad or missing signature")
        metrics.webhook_received(None, "rejected")
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        metrics.webhook_received(None, "rejected")
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    if not isinstance(payload, dict):
        metrics.webhook_received(None, "rejected")
        return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
    logs.bind(**webhook_log_ids(payload, request.headers.get("x-razorpay-event-id")))
    row_id, applied = await record_event(
        services.sessions, body, payload, request.headers.get("x-razorpay-event-id")
    )
    logs.bind(webhook_row_id=row_id)
    if applied:
        metrics.webhook_received(payload.get("event"), "duplicate")
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
        metrics.webhook_received(payload.get("event"), "queued")
        async with services.sessions() as session, session.begin():
            await jobs.enqueue(
                session,
                jobs.APPLY_WEBHOOK,
                {"event_row_id": row_id},
                dedupe_key=f"webhook:{row_id}",
            )
        return JSONResponse({"status": "queued"}, status_code=202)
    return JSONResponse({"status": "ok", "outcome": outcome})
