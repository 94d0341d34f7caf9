"""Shipments: a seller sends units of their own paid items, and reports them delivered.

Rules:
- A shipment holds units of one or more items of ONE order, all of the calling seller's, and
  only units awaiting shipment (neither cancelled nor shipped). The order must be paid and have
  a shipping address.
- Locks: the order row, then the items by id, then the shipment: the order of every writer
  (states.py), so a cancel and a shipment racing for the last unit queue on the order row and
  the second sees the first's counts. Exactly one wins.
- Every event names the item it concerns, so the item's seller finds it in the history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.errors import InvalidInput, InvalidState, NotFound
from joycart.models import (
    Order,
    OrderAddress,
    OrderItem,
    OrderStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    User,
)
from joycart.resolvers import progress, states

MAX_SHIPMENT_ITEMS = 50
MAX_CARRIER = 60
MAX_TRACKING = 60


@dataclass(frozen=True)
class LineRequest:
    order_item_id: str
    quantity: int


@dataclass(frozen=True)
class ShipmentResult:
    order: Order
    shipment: Shipment
    items: list[OrderItem]


async def lock_order_items(
    session: AsyncSession, order_id: uuid.UUID, item_ids: Sequence[uuid.UUID]
) -> tuple[Order, dict[uuid.UUID, OrderItem]]:
    """Lock the order, then the named items in id order; both read fresh from the database."""
    order = await session.get_one(Order, order_id, with_for_update=True, populate_existing=True)
    rows = await session.scalars(
        select(OrderItem)
        .where(OrderItem.id.in_(item_ids))
        .order_by(OrderItem.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return order, {row.id: row for row in rows.all()}


async def order_items(session: AsyncSession, order: Order) -> list[OrderItem]:
    """All the order's items (for its status); under the order's lock their counts are stable."""
    rows = await session.scalars(
        select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.position)
    )
    return list(rows.all())


def _event_per_item(
    session: AsyncSession,
    order: Order,
    shipment: Shipment,
    item_ids: Sequence[uuid.UUID],
    kind: str,
    *,
    to: ShipmentStatus | None,
    actor: str,
    **detail: Any,
) -> None:
    """One event per item of the shipment; the first also moves the shipment's status."""
    first, *rest = item_ids
    if to is None:  # creation: the shipment starts SHIPPED, there is nothing to move from
        states.record(
            session,
            order,
            kind,
            actor=actor,
            subject=shipment,
            order_item_id=first,
            to_status=shipment.status,
            **detail,
        )
        current = None
    else:
        current = shipment.status
        states.move(
            session, order, shipment, to, kind=kind, actor=actor, order_item_id=first, **detail
        )
    for item_id in rest:
        states.record(
            session,
            order,
            kind,
            actor=actor,
            subject=shipment,
            order_item_id=item_id,
            from_status=current,
            to_status=shipment.status,
            **detail,
        )


def _parse_lines(lines: Sequence[LineRequest]) -> list[tuple[uuid.UUID, int, str]]:
    if not 1 <= len(lines) <= MAX_SHIPMENT_ITEMS:
        raise InvalidInput(
            f"A shipment holds 1 to {MAX_SHIPMENT_ITEMS} items (got {len(lines)}).", field="items"
        )
    parsed: list[tuple[uuid.UUID, int, str]] = []
    for i, line in enumerate(lines):
        where = f"items[{i}]"
        iid = validation.parse_id(
            line.order_item_id, field=f"{where}.orderItemId", what="order item"
        )
        if any(iid == seen for seen, _, _ in parsed):
            raise InvalidInput(
                "Each item appears once in a shipment; add up its units.",
                field=f"{where}.orderItemId",
            )
        if line.quantity < 1:
            raise InvalidInput("quantity must be at least 1.", field=f"{where}.quantity")
        parsed.append((iid, line.quantity, where))
    return parsed


async def create_shipment(
    session: AsyncSession,
    *,
    seller: User,
    lines: Sequence[LineRequest],
    carrier: str,
    tracking_number: str,
    now: datetime,
) -> ShipmentResult:
    """A seller ships units of their own paid items of one order to the order's address."""
    parsed = _parse_lines(lines)
    carrier = validation.text(
        carrier, field="carrier", min_len=1, max_len=MAX_CARRIER, label="carrier"
    )
    tracking_number = validation.text(
        tracking_number,
        field="trackingNumber",
        min_len=1,
        max_len=MAX_TRACKING,
        label="trackingNumber",
    )
    found = {
        row.id: row
        for row in await session.scalars(
            select(OrderItem).where(OrderItem.id.in_([iid for iid, _, _ in parsed]))
        )
    }
    for iid, _, where in parsed:
        if iid not in found or found[iid].seller_id != seller.id:
            raise NotFound("No order item of yours with that ID.", field=f"{where}.orderItemId")
    order_ids = {row.order_id for row in found.values()}
    if len(order_ids) != 1:
        raise InvalidInput(
            "A shipment holds items of one order; create one shipment per order.", field="items"
        )
    order, items = await lock_order_items(session, order_ids.pop(), list(found))
    if order.paid_at is None or order.status is OrderStatus.CANCELLED:
        raise InvalidState(f"The order is {order.status.value.lower()}; only paid items ship.")
    if await session.get(OrderAddress, order.id) is None:
        raise InvalidState(
            "The order has no shipping address yet; the buyer sets one with "
            "setOrderShippingAddress."
        )
    for iid, quantity, where in parsed:
        waiting = items[iid].awaiting_shipment
        if quantity > waiting:
            raise InvalidState(
                f"Only {waiting} unit(s) of {items[iid].product_name!r} await shipment "
                "(the rest were cancelled or have shipped).",
                field=f"{where}.quantity",
            )
    shipment = Shipment(
        id=uuid.uuid4(),
        order_id=order.id,
        seller_id=seller.id,
        carrier=carrier,
        tracking_number=tracking_number,
        status=ShipmentStatus.SHIPPED,
        shipped_at=now,
    )
    session.add(shipment)
    await session.flush()
    actor = f"seller:{seller.id}"
    for iid, quantity, _ in sorted(parsed):
        session.add(ShipmentLine(shipment_id=shipment.id, order_item_id=iid, quantity=quantity))
        items[iid].shipped_quantity += quantity
    _event_per_item(
        session,
        order,
        shipment,
        sorted(items),
        "SHIPMENT_CREATED",
        to=None,
        actor=actor,
        carrier=carrier,
        tracking_number=tracking_number,
    )
    for iid in sorted(items):
        progress.settle_item(session, order, items[iid], kind="ITEM_SHIPPED", actor=actor)
    progress.settle_order(session, order, await order_items(session, order), actor=actor)
    await session.flush()
    return ShipmentResult(order=order, shipment=shipment, items=[items[i] for i in sorted(items)])


async def mark_shipment_delivered(
    session: AsyncSession, *, seller: User, shipment_id: str, now: datetime
) -> ShipmentResult:
    """The shipment arrived (reported by its seller today, by a carrier integration later)."""
    sid = validation.parse_id(shipment_id, field="shipmentId", what="shipment")
    found = await session.get(Shipment, sid)
    if found is None or found.seller_id != seller.id:
        raise NotFound("No shipment of yours with that ID.", field="shipmentId")
    lines = {
        line.order_item_id: line.quantity
        for line in await session.scalars(
            select(ShipmentLine).where(ShipmentLine.shipment_id == sid)
        )
    }
    order, items = await lock_order_items(session, found.order_id, list(lines))
    shipment = await session.get_one(Shipment, sid, with_for_update=True, populate_existing=True)
    if shipment.status is not ShipmentStatus.SHIPPED:
        raise InvalidState("This shipment was already delivered.")
    shipment.delivered_at = now
    actor = f"seller:{seller.id}"
    _event_per_item(
        session,
        order,
        shipment,
        sorted(items),
        "SHIPMENT_DELIVERED",
        to=ShipmentStatus.DELIVERED,
        actor=actor,
    )
    for iid in sorted(items):
        items[iid].delivered_quantity += lines[iid]
        progress.settle_item(session, order, items[iid], kind="ITEM_DELIVERED", actor=actor)
    progress.settle_order(session, order, await order_items(session, order), actor=actor)
    await session.flush()
    return ShipmentResult(order=order, shipment=shipment, items=[items[i] for i in sorted(items)])
