"""What a NOTIFY on `joycart_orders` says: which order event was committed, as ids only."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import orjson

log = logging.getLogger("joycart.realtime")

CHANNEL = "joycart_orders"  # the trigger in migration 0005 notifies this channel


@dataclass(frozen=True, slots=True)
class Notice:
    """One committed order event: what it concerns, never what it says."""

    order_id: uuid.UUID
    order_item_id: uuid.UUID | None
    subject: str  # ORDER, ITEM, PAYMENT, REFUND (states.SUBJECT_NAMES)
    event_id: int | None = None


def parse(payload: str) -> Notice | None:
    """The notice in a payload, or None (logged) for one we cannot read."""
    try:
        raw = orjson.loads(payload)
        item = raw.get("order_item_id")
        return Notice(
            order_id=uuid.UUID(raw["order_id"]),
            order_item_id=uuid.UUID(item) if item else None,
            subject=str(raw.get("subject") or "ORDER"),
            event_id=int(raw["event_id"]) if raw.get("event_id") is not None else None,
        )
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        log.warning("unreadable notice on %s: %.200r", CHANNEL, payload)
        return None
