"""What the real-time hub asks the database: who sells which item, and what changed lately."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import OrderEvent, OrderItem

ItemSellers = dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]]


async def item_sellers(session: AsyncSession, *, order_ids: Iterable[uuid.UUID]) -> ItemSellers:
    """Each order's (item, seller) pairs; an order's items never change after checkout."""
    wanted = list(order_ids)
    found: ItemSellers = defaultdict(list)
    rows = await session.execute(
        select(OrderItem.order_id, OrderItem.id, OrderItem.seller_id)
        .where(OrderItem.order_id.in_(wanted))
        .order_by(OrderItem.order_id, OrderItem.position)
    )
    for order_id, item_id, seller_id in rows:
        found[order_id].append((item_id, seller_id))
    return {order_id: found.get(order_id, []) for order_id in wanted}


async def events_since(
    session: AsyncSession, *, since: datetime
) -> list[tuple[uuid.UUID, uuid.UUID | None, str]]:
    """(order, item, subject) of events written since `since`: what a listener that was away
    may have missed (`created_at` is when the writer's transaction began, so ask with a margin)."""
    rows = await session.execute(
        select(OrderEvent.order_id, OrderEvent.order_item_id, OrderEvent.subject)
        .where(OrderEvent.created_at >= since)
        .distinct()
    )
    return [(r[0], r[1], r[2]) for r in rows]
