"""The order event log: one row per event, and its log line.

`states.record` adds the row as an ORM object (written at the next flush, with whatever else
the transaction changed); `record_now` writes it at once with one prebuilt INSERT on the
session's connection, for hot paths that write their other rows the same way (checkout), and
`insert_rows` writes several (`state_rows`: the capture webhook).
"""

from __future__ import annotations

import enum
import logging
import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from joycart.models import OrderEvent
from joycart.observability import logs

log = logging.getLogger("joycart.orders")

_INSERT_EVENT = insert(OrderEvent)


def event_row(
    order_id: uuid.UUID,
    kind: str,
    *,
    actor: str,
    subject: tuple[str, uuid.UUID] | None = None,
    order_item_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
    webhook_event_id: int | None = None,
    from_status: enum.Enum | None = None,
    to_status: enum.Enum | None = None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    """The event's row (`subject` is its kind and id; the order itself by default), logged."""
    # Every later log line of this request or job names the order (and the refund) too.
    logs.bind(order_id=order_id, refund_id=refund_id)
    kept = {k: v for k, v in detail.items() if v is not None}
    change = f" {from_status.value}->{to_status.value}" if from_status and to_status else ""
    log.info(
        "order %s: %s%s by %s %s",
        order_id,
        kind,
        change,
        actor,
        kept or "",
        extra={"order_id": str(order_id), "event_kind": kind},
    )
    subject_name, subject_id = subject if subject is not None else ("ORDER", order_id)
    return {
        "order_id": order_id,
        "kind": kind,
        "subject": subject_name,
        "subject_id": subject_id,
        "order_item_id": order_item_id,
        "from_status": from_status.value if from_status is not None else None,
        "to_status": to_status.value if to_status is not None else None,
        "actor": actor,
        "webhook_event_id": webhook_event_id,
        "detail": kept,
    }


async def insert_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Write event rows made by `event_row`, all with one prebuilt INSERT."""
    await conn.execute(_INSERT_EVENT, rows)


async def record_now(
    session: AsyncSession,
    order_id: uuid.UUID,
    kind: str,
    *,
    actor: str,
    subject: tuple[str, uuid.UUID] | None = None,
    **detail: Any,
) -> None:
    """Append an event (no status change) with one INSERT, sent now."""
    row = event_row(order_id, kind, actor=actor, subject=subject, detail=detail)
    conn = await session.connection()
    await conn.execute(_INSERT_EVENT, row)
