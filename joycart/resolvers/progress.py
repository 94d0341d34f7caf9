"""Where each unit of an item is, and the one rule that turns unit counts into a status.

Every unit of an order item is in exactly one place:

    awaiting shipment ──ship──▶ in transit ──deliver──▶ kept ──requestReturn──▶ return requested
          │                                              ▲                           │     │
          └──cancel──▶ cancelled                         └──────────reject───────────┘     │
                                                                        returned ◀──receive─┘

The item stores cumulative counts (cancelled, shipped, delivered, returned) and the units in open
returns; CHECK constraints keep each within the one before, and every writer changes them under
the order's row lock (states.py's lock order), so the places always add up to `quantity`.

The status rule, first match wins:

    1. no unit remains (every one cancelled)    CANCELLED
    2. some units are in an open return         RETURN_REQUESTED
    3. every remaining unit was returned        RETURNED
    4. some were returned                       PARTIALLY_RETURNED
    5. every remaining unit was delivered       DELIVERED
    6. every remaining unit has shipped         SHIPPED
    7. some have shipped                        PARTIALLY_SHIPPED
    8. some were cancelled                      PARTIALLY_CANCELLED
    9. otherwise                                ACTIVE (an item), PAID (an order)

("Remaining": not cancelled.) An item applies it to its own counts. A paid order applies it to
the sums over its items, counting only the units that were paid for: a unit cancelled before
payment was never part of what the buyer paid, so such a cancel leaves the order PAID once it is
paid, as it always has. Before payment an order is PENDING_PAYMENT until it is paid, cancelled or
expires (resolvers/orders.py, resolvers/payments.py).

Every writer (cancel, shipment, delivery, return) changes the counts, then calls `settle_item`
for each item it touched and `settle_order` once: they change a status only through
`states.move`, and only when the rule gives a different one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import Order, OrderEvent, OrderItem, OrderItemStatus, OrderStatus
from joycart.resolvers import states


@dataclass(frozen=True)
class Units:
    """Cumulative unit counts of an item, or summed over an order's items."""

    quantity: int
    cancelled: int
    shipped: int
    delivered: int
    return_requested: int
    returned: int

    @classmethod
    def of_item(cls, item: OrderItem) -> Units:
        return cls(
            quantity=item.quantity,
            cancelled=item.cancelled_quantity,
            shipped=item.shipped_quantity,
            delivered=item.delivered_quantity,
            return_requested=item.return_requested_quantity,
            returned=item.returned_quantity,
        )

    @classmethod
    def paid_for(cls, items: Iterable[OrderItem]) -> Units:
        """The order's units that were paid for: those cancelled before payment are left out."""
        rows = list(items)
        paid = [r.paid_quantity if r.paid_quantity is not None else r.active_quantity for r in rows]
        return cls(
            quantity=sum(paid),
            cancelled=sum(p - r.active_quantity for p, r in zip(paid, rows, strict=True)),
            shipped=sum(r.shipped_quantity for r in rows),
            delivered=sum(r.delivered_quantity for r in rows),
            return_requested=sum(r.return_requested_quantity for r in rows),
            returned=sum(r.returned_quantity for r in rows),
        )

    @property
    def remaining(self) -> int:
        return self.quantity - self.cancelled


class Stage(enum.Enum):
    OPEN = "OPEN"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    PARTIALLY_RETURNED = "PARTIALLY_RETURNED"
    RETURNED = "RETURNED"
    CANCELLED = "CANCELLED"


def stage(units: Units) -> Stage:
    """The rule in this module's docstring, in the same order."""
    remaining = units.remaining
    if remaining == 0:
        return Stage.CANCELLED
    if units.return_requested > 0:
        return Stage.RETURN_REQUESTED
    if units.returned == remaining:
        return Stage.RETURNED
    if units.returned > 0:
        return Stage.PARTIALLY_RETURNED
    if units.delivered == remaining:
        return Stage.DELIVERED
    if units.shipped == remaining:
        return Stage.SHIPPED
    if units.shipped > 0:
        return Stage.PARTIALLY_SHIPPED
    if units.cancelled > 0:
        return Stage.PARTIALLY_CANCELLED
    return Stage.OPEN


ITEM_STATUS: Mapping[Stage, OrderItemStatus] = {
    stage: OrderItemStatus.ACTIVE if stage is Stage.OPEN else OrderItemStatus(stage.value)
    for stage in Stage
}
ORDER_STATUS: Mapping[Stage, OrderStatus] = {
    stage: OrderStatus.PAID if stage is Stage.OPEN else OrderStatus(stage.value) for stage in Stage
}
# Every status of a paid order that is not over: a cancel of its unshipped units refunds them.
PAID_STATES = tuple(status for st, status in ORDER_STATUS.items() if st is not Stage.CANCELLED)


def item_status(item: OrderItem) -> OrderItemStatus:
    return ITEM_STATUS[stage(Units.of_item(item))]


def order_status(order: Order, items: Iterable[OrderItem]) -> OrderStatus:
    """A paid order's status from its items; before payment, whatever orders.py last set."""
    if order.paid_at is None:
        return order.status
    return ORDER_STATUS[stage(Units.paid_for(items))]


def settle_item(
    session: AsyncSession,
    order: Order,
    item: OrderItem,
    *,
    kind: str,
    actor: str,
    **detail: Any,
) -> OrderEvent | None:
    """Move the item to the status its counts give; None (and no event) if it is already there."""
    target = item_status(item)
    if target is item.status:
        return None
    return states.move(session, order, item, target, kind=kind, actor=actor, **detail)


def settle_order(
    session: AsyncSession, order: Order, items: Iterable[OrderItem], *, actor: str
) -> OrderEvent | None:
    """Move a paid order to the status its items give (event `ORDER_<STATUS>`); None if there."""
    target = order_status(order, items)
    if target is order.status:
        return None
    return states.move(session, order, order, target, kind=f"ORDER_{target.value}", actor=actor)
