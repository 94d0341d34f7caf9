"""GraphQL fields for orders: the buyer's orders, a seller's items, and item cancellation."""

from __future__ import annotations

import logging
import uuid

import strawberry

from joycart import models
from joycart.resolvers import orders, owed, refund_retry
from joycart.schema.context import Context
from joycart.schema.errors import UserError, user_errors
from joycart.schema.pagination import (
    Connection,
    connection,
    decode_cursor,
    page_size,
)
from joycart.schema.types import JCInfo, Order, OrderItem, Refund, Viewer

log = logging.getLogger("joycart.graphql")


async def order_for_viewer(ctx: Context, viewer: models.User, order_id: str) -> Order | None:
    """The order as `viewer` may see it, or None: the one rule of `order(id)` and `orderUpdated`."""
    async with ctx.read() as session:
        row = await orders.visible_order(session, viewer=viewer, order_id=order_id)
    return Order.of(row, Viewer.of(viewer)) if row is not None else None


async def seller_item_for_viewer(
    ctx: Context, seller: models.User, order_item_id: uuid.UUID
) -> OrderItem | None:
    """One of the seller's own items as they may see it, or None (`sellerOrderItemUpdated`)."""
    async with ctx.read() as session:
        row = await orders.seller_item(session, seller=seller, order_item_id=order_item_id)
    return OrderItem.of(row, Viewer.of(seller)) if row is not None else None


@strawberry.type
class CancelItemPayload:
    order_item: OrderItem | None = None
    refund: Refund | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RefundPayload:
    refund: Refund | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrdersQuery:
    @strawberry.field(description="The caller's orders, newest first.")
    async def orders(
        self, info: JCInfo, first: int | None = 20, after: str | None = None
    ) -> Connection[Order]:
        user = await info.context.require_user()
        async with info.context.read() as session:
            page = await orders.buyer_orders(
                session, buyer=user, first=page_size(first), after=decode_cursor(after)
            )
        viewer = Viewer.of(user)
        return connection(page.rows, [Order.of(r, viewer) for r in page.rows], page.has_next)

    @strawberry.field(description="An order its buyer, or a seller of one of its items, may see.")
    async def order(self, info: JCInfo, id: strawberry.ID) -> Order | None:
        user = await info.context.user()
        if user is None:
            return None
        return await order_for_viewer(info.context, user, id)

    @strawberry.field(description="Items of the caller's products across all orders, newest first.")
    async def seller_order_items(
        self, info: JCInfo, first: int | None = 20, after: str | None = None
    ) -> Connection[OrderItem]:
        user = await info.context.require_user()
        async with info.context.read() as session:
            page = await orders.seller_items(
                session, seller=user, first=page_size(first), after=decode_cursor(after)
            )
        viewer = Viewer.of(user)
        return connection(page.rows, [OrderItem.of(r, viewer) for r in page.rows], page.has_next)


@strawberry.type
class OrdersMutation:
    @strawberry.mutation(
        description="Cancel units of an item (all remaining by default). On a paid order this "
        "starts a refund for exactly their value; it settles when Razorpay confirms."
    )
    @user_errors(CancelItemPayload)
    async def cancel_item(
        self,
        info: JCInfo,
        order_item_id: strawberry.ID,
        quantity: int | None = None,
        reason: str | None = None,
    ) -> CancelItemPayload:
        ctx = info.context
        actor = await ctx.require_user()
        async with ctx.transaction() as session:
            result = await orders.cancel_item(
                session, actor=actor, order_item_id=order_item_id, quantity=quantity, reason=reason
            )
        refund_row = result.refund
        # Committed: the calls it owes never turn into an error for what was committed.
        if refund_row is not None:
            refund_row = await owed.submit_refund(ctx.services, refund_row)
        if result.new_payment is not None:
            await owed.open_payment_session(ctx.services, result.new_payment)
        return CancelItemPayload(
            order_item=OrderItem.of(result.item, Viewer.of(actor)),
            refund=Refund.of(refund_row, Viewer.of(actor)) if refund_row is not None else None,
        )

    @strawberry.mutation(
        description="Ask again for a refund Razorpay reported FAILED (buyer or the item's seller)."
    )
    @user_errors(RefundPayload)
    async def retry_refund(self, info: JCInfo, refund_id: strawberry.ID) -> RefundPayload:
        ctx = info.context
        actor = await ctx.require_user()
        refund = await refund_retry.retry_refund(
            ctx.transaction, ctx.services.gateway, actor=actor, refund_id=refund_id
        )
        refund = await owed.submit_refund(ctx.services, refund)
        return RefundPayload(refund=Refund.of(refund, Viewer.of(actor)))
