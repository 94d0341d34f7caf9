"""What one checkout leaves behind, read back for the yardstick's equality check: the order, its
items, payment, job and events, with ids and times masked so two checkouts can be compared."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg


async def snapshot(conn: asyncpg.Connection, buyer: uuid.UUID) -> dict[str, Any]:
    """What one checkout left, with its own ids replaced by what they name."""
    order = await conn.fetchrow("SELECT * FROM orders WHERE buyer_id = $1", buyer)
    assert order is not None
    payment = await conn.fetchrow("SELECT * FROM payments WHERE order_id = $1", order["id"])
    assert payment is not None
    names: dict[Any, str] = {
        order["id"]: "<order>",
        str(order["id"]): "<order>",
        payment["id"]: "<payment>",
        str(payment["id"]): "<payment>",
        buyer: "<buyer>",
        f"user:{buyer}": "user:<buyer>",
        order["idempotency_key"]: "<key>",
        payment["razorpay_order_id"]: "<razorpay order>",
        f"gateway-order:{payment['id']}": "gateway-order:<payment>",
    }

    def named(row: Any) -> dict[str, Any]:
        out = {}
        for k, v in dict(row).items():
            if k in ("id", "created_at", "updated_at", "added_at"):
                continue
            if isinstance(v, str) and v.startswith("{"):
                v = {a: names.get(b, b) for a, b in json.loads(v).items()}
            out[k] = names.get(v, v) if isinstance(v, str | uuid.UUID) else v
        return out

    def rows(records: list[Any]) -> list[dict[str, Any]]:
        return [named(r) for r in records]

    o = named(order)
    # Both sides take the clock more than once per row: compare to the second.
    o["expires_at"] = round((order["expires_at"] - order["created_at"]).total_seconds())
    p = named(payment)
    return {
        "order": o,
        "payment": p,
        "items": rows(
            await conn.fetch(
                "SELECT * FROM order_items WHERE order_id = $1 ORDER BY position", order["id"]
            )
        ),
        "ledger": rows(
            await conn.fetch(
                "SELECT * FROM stock_ledger WHERE order_id = $1 ORDER BY product_id", order["id"]
            )
        ),
        "jobs": rows(
            await conn.fetch(
                "SELECT kind, payload::text, dedupe_key, status, attempts, locked_until, "
                "lease_token, round(extract(epoch FROM run_at - created_at)) AS delay "
                "FROM jobs WHERE dedupe_key = $1",
                f"gateway-order:{payment['id']}",
            )
        ),
        "events": rows(
            await conn.fetch(
                "SELECT kind, subject, subject_id, order_item_id, from_status, to_status, actor, "
                "webhook_event_id, detail::text FROM order_events WHERE order_id = $1 ORDER BY id",
                order["id"],
            )
        ),
        "cart lines left": await conn.fetchval(
            "SELECT count(*) FROM cart_items WHERE user_id = $1", buyer
        ),
        "leases left": await conn.fetchval("SELECT count(*) FROM call_leases"),
    }


def mask_answer(answer: Any) -> Any:
    order = answer["order"]
    return {
        **answer,
        "order": {
            **order,
            "id": "<order>",
            "payment": {**order["payment"], "razorpayOrderId": "<razorpay order>"},
        },
    }
