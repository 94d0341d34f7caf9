"""The webhook yardstick's plain route: JoyCart's statements for a capture, by hand.

A Starlette app on `joycart.db.make_engine` that does what JoyCart's `POST /webhooks/razorpay`
does for a `payment.captured` of what the session owes: the hex HMAC-SHA256 of the raw body
with a constant-time compare, the inbox insert deduplicated on the body's SHA-256 (its own
transaction, committed first), then in one transaction `SET LOCAL lock_timeout`, the inbox row
`FOR UPDATE`, the order `FOR UPDATE` (its id read from the payment by the same statement), the
payment `FOR UPDATE`, the capture insert (`ON CONFLICT DO NOTHING`: no row back is a duplicate),
the items' `paid_quantity`, payment CAPTURED, order PAID, the two order events and the inbox
row's outcome. Anything else is queued as a job (202). `webhook.py` starts it in its own uvicorn
process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import uuid
from typing import Any

import orjson
from _harness import HOST

SECRET_ENV = "JOYCART_BENCH_WEBHOOK_SECRET"  # noqa: S105 (a variable name, not a secret)


INBOX_INSERT = """INSERT INTO webhook_events (body_sha256, event_type, event_id_header, payload,
    deliveries, received_at, updated_at)
  VALUES (:sha, :event_type, :event_id, CAST(:payload AS JSONB), 1, :now, :now)
  ON CONFLICT (body_sha256) DO UPDATE SET deliveries = webhook_events.deliveries + 1
  RETURNING webhook_events.id, webhook_events.processed_at"""
INBOX_LOCK = (
    "SELECT outcome, processed_at FROM webhook_events WHERE webhook_events.id = :id FOR UPDATE"
)
ORDER_LOCK = """SELECT * FROM orders WHERE orders.id = (SELECT payments.order_id FROM payments
  WHERE payments.razorpay_order_id = :rzp) FOR UPDATE OF orders"""
PAYMENT_LOCK = "SELECT * FROM payments WHERE payments.razorpay_order_id = :rzp FOR UPDATE"
CAPTURE_INSERT = """INSERT INTO captures (id, payment_id, gateway_payment_id, amount, currency,
    owed, created_at) VALUES (:id, :payment, :pay, :amount, :currency, true, :now)
  ON CONFLICT (gateway_payment_id) DO NOTHING RETURNING captures.id"""
ITEMS_PAID = """UPDATE order_items SET paid_quantity=(order_items.quantity -
    order_items.cancelled_quantity) WHERE order_items.order_id = :order"""
PAYMENT_CAPTURED = """UPDATE payments SET status='CAPTURED', razorpay_payment_id=:pay,
    updated_at=:now WHERE payments.id = :id"""
ORDER_PAID = "UPDATE orders SET status='PAID', paid_at=:now, updated_at=:now WHERE orders.id = :id"
EVENTS_INSERT = """INSERT INTO order_events (order_id, kind, subject, subject_id, from_status,
    to_status, actor, webhook_event_id, detail, created_at) VALUES
  (:order, 'PAYMENT_CAPTURED', 'PAYMENT', :payment, :payment_from, 'CAPTURED', :actor, :event,
   CAST(:detail AS JSONB), :now),
  (:order, 'ORDER_PAID', 'ORDER', :order, 'PENDING_PAYMENT', 'PAID', :actor, :event,
   '{}'::jsonb, :now)"""
INBOX_DONE = """UPDATE webhook_events SET outcome=:outcome, processed_at=:now, updated_at=:now
  WHERE webhook_events.id = :id"""
JOB_INSERT = """INSERT INTO jobs (kind, payload, dedupe_key, status, run_at, attempts)
  VALUES ('apply_webhook', CAST(:payload AS JSONB), :key, 'PENDING', now(), 0)
  ON CONFLICT DO NOTHING"""

SQL = {
    "INBOX_INSERT": INBOX_INSERT,
    "INBOX_LOCK": INBOX_LOCK,
    "ORDER_LOCK": ORDER_LOCK,
    "PAYMENT_LOCK": PAYMENT_LOCK,
    "CAPTURE_INSERT": CAPTURE_INSERT,
    "ITEMS_PAID": ITEMS_PAID,
    "PAYMENT_CAPTURED": PAYMENT_CAPTURED,
    "ORDER_PAID": ORDER_PAID,
    "EVENTS_INSERT": EVENTS_INSERT,
    "INBOX_DONE": INBOX_DONE,
    "JOB_INSERT": JOB_INSERT,
}


def plain_app(database_url: str, secret: str) -> Any:
    from datetime import UTC, datetime

    from sqlalchemy import text
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from joycart.db import make_engine

    engine = make_engine(database_url)
    sql = {name: text(statement) for name, statement in SQL.items()}

    async def apply(row_id: int, entity: dict[str, Any]) -> str:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL lock_timeout = 2000"))
            inbox = (await conn.execute(sql["INBOX_LOCK"], {"id": row_id})).one()
            if inbox.processed_at is not None:
                return str(inbox.outcome or "already applied")
            rzp = entity.get("order_id")
            order = (await conn.execute(sql["ORDER_LOCK"], {"rzp": rzp})).one_or_none()
            if order is None:
                return "unknown razorpay order"
            payment = (await conn.execute(sql["PAYMENT_LOCK"], {"rzp": rzp})).one()
            pay = str(entity.get("id"))
            amount, currency = entity.get("amount"), entity.get("currency")
            if (
                amount != payment.amount
                or currency != payment.currency
                or order.status != "PENDING_PAYMENT"
                or payment.status not in ("CREATED", "FAILED")
            ):
                raise NotImplementedError("the yardstick only applies captures that are owed")
            now = datetime.now(UTC)
            inserted = await conn.scalar(
                sql["CAPTURE_INSERT"],
                {
                    "id": uuid.uuid4(),
                    "payment": payment.id,
                    "pay": pay,
                    "amount": amount,
                    "currency": currency,
                    "now": now,
                },
            )
            if inserted is None:
                return "duplicate capture"
            await conn.execute(sql["ITEMS_PAID"], {"order": order.id})
            await conn.execute(sql["PAYMENT_CAPTURED"], {"pay": pay, "now": now, "id": payment.id})
            await conn.execute(sql["ORDER_PAID"], {"now": now, "id": order.id})
            await conn.execute(
                sql["EVENTS_INSERT"],
                {
                    "order": order.id,
                    "payment": payment.id,
                    "payment_from": payment.status,
                    "actor": f"webhook:{row_id}",
                    "event": row_id,
                    "detail": json.dumps({"razorpay_payment_id": pay, "amount": amount}),
                    "now": now,
                },
            )
            await conn.execute(sql["INBOX_DONE"], {"outcome": "paid", "now": now, "id": row_id})
        return "paid"

    async def webhook(request: Request) -> Response:
        body = await request.body()
        signature = request.headers.get("x-razorpay-signature")
        if not signature or len(signature) != 64 or not signature.isascii():
            return JSONResponse({"error": "invalid signature"}, status_code=400)
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            return JSONResponse({"error": "invalid signature"}, status_code=400)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        event_id = request.headers.get("x-razorpay-event-id")
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    sql["INBOX_INSERT"],
                    {
                        "sha": hashlib.sha256(body).digest(),
                        "event_type": str(payload.get("event", ""))[:80],
                        "event_id": event_id[:80] if event_id else None,
                        "payload": body.decode(),
                        "now": datetime.now(UTC),
                    },
                )
            ).one()
        if row.processed_at is not None:
            return JSONResponse({"status": "duplicate"})
        try:
            entity = payload["payload"]["payment"]["entity"]
            if payload.get("event") != "payment.captured" or entity.get("status") != "captured":
                raise NotImplementedError("the yardstick only applies payment.captured")
            outcome = await apply(row.id, entity)
        except Exception:  # recorded already: JoyCart's worker would apply it later
            async with engine.begin() as conn:
                await conn.execute(
                    sql["JOB_INSERT"],
                    {"payload": json.dumps({"event_row_id": row.id}), "key": f"webhook:{row.id}"},
                )
            return JSONResponse({"status": "queued"}, status_code=202)
        return JSONResponse({"status": "ok", "outcome": outcome})

    return Starlette(routes=[Route("/webhooks/razorpay", webhook, methods=["POST"])])


def main() -> None:
    """`plain_webhook.py PORT DATABASE_URL`, the webhook secret in the environment."""
    import uvicorn

    port, database_url = int(sys.argv[1]), sys.argv[2]
    app = plain_app(database_url, os.environ[SECRET_ENV])
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
