"""GraphQL fields for shipments and returns, and who may see them.

The viewer rule for both is `fulfilment_rows_for` below: an order's buyer sees every shipment
and return of it; a seller only those of their own items; anyone else none (they cannot reach
the order in the first place: `order(id)` answers null).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import strawberry

from joycart import models
from joycart.errors import GatewayUnavailable
from joycart.models.fulfilment import ReturnStatus, ShipmentStatus
from joycart.resolvers import fulfilment, payments, returns
from joycart.schema.context import Context
from joycart.schema.errors import UserError, user_errors
from joycart.schema.types import JCInfo, OrderItem, Refund

log = logging.getLogger("joycart.graphql")

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


async def submit_owed_refund(ctx: Context, refund: models.Refund) -> models.Refund:
    """Committed: now the Razorpay call the refund owes (the worker retries it if this fails).
    The one post-commit refund call of this module, as cancelItem makes it."""
    try:
        return await payments.submit_refund(
            ctx.services.sessions, ctx.services.gateway, refund.id, wait=True
        )
    except GatewayUnavailable as exc:
        log.warning("refund %s committed; gateway call deferred: %s", refund.id, exc)
        return refund


@strawberry.input
class ShipmentItemInput:
    order_item_id: strawberry.ID
    quantity: int


@strawberry.type
class ShipmentPayload:
    shipment: Shipment | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReturnPayload:
    item_return: ItemReturn | None = strawberry.field(default=None, name="return")
    refund: Refund | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _window(ctx: Context) -> timedelta:
    return timedelta(days=ctx.services.settings.return_window_days)


@strawberry.type
class FulfilmentMutation:
    @strawberry.mutation(
        description="Ship units of your own paid items of one order (the order needs a shipping "
        "address). Units cancelled or already shipped cannot ship."
    )
    @user_errors(ShipmentPayload)
    async def create_shipment(
        self,
        info: JCInfo,
        items: list[ShipmentItemInput],
        carrier: str,
        tracking_number: str,
    ) -> ShipmentPayload:
        ctx = info.context
        seller = await ctx.require_user()
        lines = [fulfilment.LineRequest(str(i.order_item_id), i.quantity) for i in items]
        async with ctx.transaction() as session:
            result = await fulfilment.create_shipment(
                session,
                seller=seller,
                lines=lines,
                carrier=carrier,
                tracking_number=tracking_number,
                now=ctx.services.clock(),
            )
        return ShipmentPayload(shipment=Shipment.of(result.shipment))

    @strawberry.mutation(
        description="Report a shipment of yours delivered (what a carrier integration will call)."
    )
    @user_errors(ShipmentPayload)
    async def mark_shipment_delivered(
        self, info: JCInfo, shipment_id: strawberry.ID
    ) -> ShipmentPayload:
        ctx = info.context
        seller = await ctx.require_user()
        async with ctx.transaction() as session:
            result = await fulfilment.mark_shipment_delivered(
                session, seller=seller, shipment_id=shipment_id, now=ctx.services.clock()
            )
        return ShipmentPayload(shipment=Shipment.of(result.shipment))

    @strawberry.mutation(
        description="Ask to send back delivered units of an item of your order, within "
        "JOYCART_RETURN_WINDOW_DAYS (7 by default) of their delivery."
    )
    @user_errors(ReturnPayload)
    async def request_return(
        self, info: JCInfo, order_item_id: strawberry.ID, quantity: int, reason: str
    ) -> ReturnPayload:
        ctx = info.context
        buyer = await ctx.require_user()
        async with ctx.transaction() as session:
            result = await returns.request_return(
                session,
                buyer=buyer,
                order_item_id=order_item_id,
                quantity=quantity,
                reason=reason,
                now=ctx.services.clock(),
                window=_window(ctx),
            )
        return ReturnPayload(item_return=ItemReturn.of(result.ret))

    @strawberry.mutation(description="Accept a return of your item: the buyer may send it back.")
    @user_errors(ReturnPayload)
    async def approve_return(self, info: JCInfo, return_id: strawberry.ID) -> ReturnPayload:
        ctx = info.context
        seller = await ctx.require_user()
        async with ctx.transaction() as session:
            result = await returns.approve_return(
                session, seller=seller, return_id=return_id, now=ctx.services.clock()
            )
        return ReturnPayload(item_return=ItemReturn.of(result.ret))

    @strawberry.mutation(description="Refuse a requested return of your item, saying why.")
    @user_errors(ReturnPayload)
    async def reject_return(
        self, info: JCInfo, return_id: strawberry.ID, reason: str
    ) -> ReturnPayload:
        ctx = info.context
        seller = await ctx.require_user()
        async with ctx.transaction() as session:
            result = await returns.reject_return(
                session, seller=seller, return_id=return_id, reason=reason, now=ctx.services.clock()
            )
        return ReturnPayload(item_return=ItemReturn.of(result.ret))

    @strawberry.mutation(
        description="The returned units are back: refund exactly them (it settles when Razorpay "
        "confirms), and with restock put them back in stock."
    )
    @user_errors(ReturnPayload)
    async def receive_return(
        self, info: JCInfo, return_id: strawberry.ID, restock: bool
    ) -> ReturnPayload:
        ctx = info.context
        seller = await ctx.require_user()
        async with ctx.transaction() as session:
            result = await returns.receive_return(
                session,
                seller=seller,
                return_id=return_id,
                restock=restock,
                now=ctx.services.clock(),
            )
        assert result.refund is not None
        refund = await submit_owed_refund(ctx, result.refund)
        return ReturnPayload(item_return=ItemReturn.of(result.ret), refund=Refund.of(refund))
