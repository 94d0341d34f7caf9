"""GraphQL types of shipments and returns, and who may see them.

The viewer rule for both is `fulfilment_rows_for` below: an order's buyer sees every shipment
and return of it; a seller only those of their own items; anyone else none (they cannot reach
the order in the first place: `order(id)` answers null).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

import strawberry

from joycart import models
from joycart.models.fulfilment import ReturnStatus, ShipmentStatus
from joycart.schema.types import JCInfo, OrderItem, Refund

strawberry.enum(ShipmentStatus, description="SHIPPED, then DELIVERED.")
strawberry.enum(
    ReturnStatus,
    description="REQUESTED by the buyer; APPROVED or REJECTED by the seller; RECEIVED (refunded).",
)


class _SellersRow(Protocol):
    @property
    def seller_id(self) -> uuid.UUID: ...


RowT = TypeVar("RowT", bound=_SellersRow)


def fulfilment_rows_for(
    viewer: models.User | None, order: models.Order, rows: Sequence[RowT]
) -> list[RowT]:
    """The viewer rule: the buyer sees all the order's shipments and returns, a seller those of
    their own items (a shipment holds one seller's items only), anyone else nothing."""
    if viewer is None:
        return []
    if viewer.id == order.buyer_id:
        return list(rows)
    return [row for row in rows if row.seller_id == viewer.id]


async def _item(info: JCInfo, order_id: uuid.UUID, item_id: uuid.UUID) -> OrderItem:
    rows = await info.context.loaders.items_by_order.load(order_id)
    return OrderItem.of(next(r for r in rows if r.id == item_id))


@strawberry.type(description="Units of one order item in a shipment.")
class ShipmentItem:
    quantity: int
    row: strawberry.Private[models.ShipmentLine]
    order_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def order_item(self, info: JCInfo) -> OrderItem:
        return await _item(info, self.order_id, self.row.order_item_id)


@strawberry.type(description="A parcel a seller sent for an order, with its tracking.")
class Shipment:
    id: strawberry.ID
    status: ShipmentStatus
    carrier: str
    tracking_number: str
    shipped_at: datetime
    delivered_at: datetime | None
    row: strawberry.Private[models.Shipment]

    @classmethod
    def of(cls, row: models.Shipment) -> Shipment:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            carrier=row.carrier,
            tracking_number=row.tracking_number,
            shipped_at=row.shipped_at,
            delivered_at=row.delivered_at,
            row=row,
        )

    @strawberry.field(description="What the parcel holds.")
    async def items(self, info: JCInfo) -> list[ShipmentItem]:
        lines = await info.context.loaders.lines_by_shipment.load(self.row.id)
        return [ShipmentItem(quantity=r.quantity, row=r, order_id=self.row.order_id) for r in lines]


@strawberry.type(
    name="Return",
    description="Delivered units the buyer sends back; receiving them refunds exactly them.",
)
class ItemReturn:
    id: strawberry.ID
    status: ReturnStatus
    quantity: int
    reason: str
    rejection_reason: str | None
    restocked: bool | None = strawberry.field(
        description="Whether the received units went back to stock; null until received."
    )
    requested_at: datetime
    decided_at: datetime | None
    received_at: datetime | None
    row: strawberry.Private[models.Return]

    @classmethod
    def of(cls, row: models.Return) -> ItemReturn:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            quantity=row.quantity,
            reason=row.reason,
            rejection_reason=row.rejection_reason,
            restocked=row.restocked,
            requested_at=row.requested_at,
            decided_at=row.decided_at,
            received_at=row.received_at,
            row=row,
        )

    @strawberry.field
    async def order_item(self, info: JCInfo) -> OrderItem:
        return await _item(info, self.row.order_id, self.row.order_item_id)

    @strawberry.field(description="The refund receiving the return started; null before that.")
    async def refund(self, info: JCInfo) -> Refund | None:
        if self.row.refund_id is None:
            return None
        rows = await info.context.loaders.refunds_by_item.load(self.row.order_item_id)
        return next((Refund.of(r) for r in rows if r.id == self.row.refund_id), None)


async def order_shipments(info: JCInfo, order: models.Order) -> list[Shipment]:
    rows = await info.context.loaders.shipments_by_order.load(order.id)
    viewer = await info.context.user()
    return [Shipment.of(r) for r in fulfilment_rows_for(viewer, order, rows)]


async def order_returns(
    info: JCInfo, order: models.Order, item_id: uuid.UUID | None = None
) -> list[ItemReturn]:
    rows = await info.context.loaders.returns_by_order.load(order.id)
    viewer = await info.context.user()
    return [
        ItemReturn.of(r)
        for r in fulfilment_rows_for(viewer, order, rows)
        if item_id is None or r.order_item_id == item_id
    ]


async def item_returns(info: JCInfo, item: models.OrderItem) -> list[ItemReturn]:
    order = await info.context.loaders.orders.load(item.order_id)
    assert order is not None
    return await order_returns(info, order, item.id)
