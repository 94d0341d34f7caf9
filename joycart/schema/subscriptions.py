"""GraphQL subscriptions (WebSocket, graphql-transport-ws): an order's updates, a seller's items.

Each update is read from the database after the change committed, with the rule the queries
use (`order_for_viewer`, `seller_item_for_viewer`), so a subscription never shows more than
`order(id)` would. Who may not see an order gets the same `NOT_FOUND` as for an order that does
not exist, and no watch is ever registered for it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Iterator

import strawberry
from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from joycart.errors import NotFound
from joycart.realtime.connection import SocketConnection
from joycart.realtime.hub import RealtimeUnavailable
from joycart.schema.orders import order_for_viewer, seller_item_for_viewer
from joycart.schema.socket_context import SocketContext
from joycart.schema.types import JCInfo, Order, OrderItem


def _over_http() -> GraphQLError:
    return GraphQLError(
        "Subscriptions are served over WebSocket (graphql-transport-ws) at /graphql.",
        extensions={"code": "INVALID_INPUT"},
    )


class SubscriptionsOverSocketsOnly(SchemaExtension):
    """A subscription sent over HTTP is refused before it runs (executed as a query, its
    resolver would hand back a generator that no query can complete)."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.operation_type is OperationType.SUBSCRIPTION and not isinstance(
            execution.context, SocketContext
        ):
            execution.result = ExecutionResult(data=None, errors=[_over_http()])
        yield


def _socket(info: JCInfo) -> tuple[SocketContext, SocketConnection]:
    ctx = info.context
    if not isinstance(ctx, SocketContext) or ctx.connection is None:
        raise _over_http()
    return ctx, ctx.connection


def _unavailable(exc: RealtimeUnavailable) -> GraphQLError:
    return GraphQLError(str(exc), extensions={"code": "SERVICE_UNAVAILABLE"})


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The order as it stands, then again after every committed change: the "
        "status of the order, its items, its payment session or its refunds, or a new entry in "
        "its history. Its buyer sees all of it; a seller of one of its items sees their part."
    )
    async def order_updated(
        self, info: JCInfo, order_id: strawberry.ID
    ) -> AsyncGenerator[Order, None]:
        ctx, connection = _socket(info)
        viewer = await ctx.require_user()
        if await order_for_viewer(ctx, viewer, order_id) is None:
            raise NotFound("No order with that ID.", field="orderId")
        try:
            async with connection.watch_order(uuid.UUID(order_id)) as watch:
                while True:
                    await ctx.begin_update()
                    order = await order_for_viewer(ctx, viewer, order_id)
                    if order is None:
                        raise NotFound("No order with that ID.", field="orderId")
                    yield order
                    order = None  # sent: keep nothing of it while the socket waits
                    await watch.changes()
        except RealtimeUnavailable as exc:
            raise _unavailable(exc) from None
        finally:
            await ctx.end_update()

    @strawberry.subscription(
        description="Each item of the caller's products whose order changed (the item, its "
        "refunds, or the order's status), read after the change committed."
    )
    async def seller_order_item_updated(self, info: JCInfo) -> AsyncGenerator[OrderItem, None]:
        ctx, connection = _socket(info)
        seller = await ctx.require_user()
        try:
            async with connection.watch_seller(seller.id) as watch:
                while True:
                    for item_id in await watch.changes():
                        await ctx.begin_update()
                        item = await seller_item_for_viewer(ctx, seller, item_id)
                        if item is not None:
                            yield item
                        item = None
                        await ctx.end_update()
        except RealtimeUnavailable as exc:
            raise _unavailable(exc) from None
        finally:
            await ctx.end_update()
