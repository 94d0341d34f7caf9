"""The order event log: every state change with its cause."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import Order, OrderEvent, OrderStatus
from joycart.observability import logs

log = logging.getLogger("joycart.orders")


def record(
    session: AsyncSession,
    order: Order,
    kind: str,
    *,
    actor: str,
    to_status: OrderStatus | None = None,
    webhook_event_id: int | None = None,
    **detail: Any,
) -> None:
    """Append an event; when `to_status` is given, also move the order there."""
    logs.bind(order_id=order.id, refund_id=detail.get("refund_id"))
    from_status = order.status
    if to_status is not None:
        order.status = to_status
    session.add(
        OrderEvent(
            order_id=order.id,
            kind=kind,
            from_status=from_status.value if to_status is not None else None,
            to_status=to_status.value if to_status is not None else None,
            actor=actor,
            webhook_event_id=webhook_event_id,
            detail=detail,
        )
    )
    log.info(
        "order %s: %s%s by %s %s",
        order.id,
        kind,
        f" {from_status.value}->{to_status.value}" if to_status is not None else "",
        actor,
        detail or "",
        extra={"order_event": kind},
    )
