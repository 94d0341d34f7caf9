"""`POST /webhooks/razorpay`: verify the raw bytes, record the event, apply it, answer fast.

Razorpay signs the raw body (HMAC-SHA256, hex) with the webhook secret. The event-id header is
not signed, so deduplication keys on the SHA-256 of the signed body. Applying is idempotent
anyway: a duplicate, a reordering or a replay converges to the same state.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from joycart.bootstrap import Services
from joycart.resolvers import jobs
from joycart.resolvers.inbox import apply_recorded, record_event

log = logging.getLogger("joycart.webhooks")


def signature_is_valid(body: bytes, signature: str | None, secret: str) -> bool:
    if not signature or len(signature) != 64 or not signature.isascii():
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


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
