"""GraphQL mutations of shipments and returns; after a receive, the refund call it owes."""

from __future__ import annotations

import logging
from datetime import timedelta

import strawberry

from joycart.resolvers import fulfilment, owed, returns
from joycart.schema.context import Context
from joycart.schema.errors import UserError, user_errors
from joycart.schema.fulfilment_types import ItemReturn, Shipment
from joycart.schema.types import JCInfo, Refund, Viewer

log = logging.getLogger("joycart.graphql")


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
        return ShipmentPayload(shipment=Shipment.of(result.shipment, Viewer.of(seller)))

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
        return ShipmentPayload(shipment=Shipment.of(result.shipment, Viewer.of(seller)))

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
        return ReturnPayload(item_return=ItemReturn.of(result.ret, Viewer.of(buyer)))

    @strawberry.mutation(description="Accept a return of your item: the buyer may send it back.")
    @user_errors(ReturnPayload)
    async def approve_return(self, info: JCInfo, return_id: strawberry.ID) -> ReturnPayload:
        ctx = info.context
        seller = await ctx.require_user()
        async with ctx.transaction() as session:
            result = await returns.approve_return(
                session, seller=seller, return_id=return_id, now=ctx.services.clock()
            )
        return ReturnPayload(item_return=ItemReturn.of(result.ret, Viewer.of(seller)))

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
        return ReturnPayload(item_return=ItemReturn.of(result.ret, Viewer.of(seller)))

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
        refund = await owed.submit_refund(ctx.services, result.refund)
        viewer = Viewer.of(seller)
        return ReturnPayload(
            item_return=ItemReturn.of(result.ret, viewer), refund=Refund.of(refund, viewer)
        )
