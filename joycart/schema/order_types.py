"""GraphQL types of orders: Order, OrderItem, Payment, Refund, AutomaticRefund, OrderEvent.

Each object is built for a `Viewer` and passes it on to every object it builds. `Order` shows
what `OrderScope` (joycart.schema.viewer) allows: the buyer everything, a seller their own items,
their refunds and the events about them, and never the payment. Lists on an order load through
the request's DataLoaders: one statement per kind of row per level of the query.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from joycart import models
from joycart.models.orders import OrderItemStatus, OrderStatus
from joycart.models.payments import PaymentStatus, RefundReason, RefundStatus
from joycart.schema.catalog_types import JCInfo, Money, Product, User
from joycart.schema.viewer import OrderScope, Viewer

if TYPE_CHECKING:
    from joycart.schema.addresses import ShippingAddress
    from joycart.schema.fulfilment_types import ItemReturn, Shipment


@strawberry.type(description="The buyer's payment session: what the SPA hands to Razorpay.")
class Payment:
    id: strawberry.ID
    status: PaymentStatus
    amount: Money
    razorpay_order_id: str | None
    razorpay_key_id: str | None
    razorpay_payment_id: str | None
    receipt: str

    @classmethod
    def of(cls, row: models.Payment, key_id: str) -> Payment:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            amount=Money(amount=row.amount, currency=row.currency),
            razorpay_order_id=row.razorpay_order_id,
            razorpay_key_id=key_id if row.razorpay_order_id else None,
            razorpay_payment_id=row.razorpay_payment_id,
            receipt=row.receipt,
        )


@strawberry.type(description="A refund of cancelled units; only Razorpay's webhooks settle it.")
class Refund:
    id: strawberry.ID
    status: RefundStatus
    amount: Money
    quantity: int
    reason: RefundReason
    gateway_refund_id: str | None
    failure_reason: str | None
    created_at: datetime
    row: strawberry.Private[models.Refund]
    viewer: strawberry.Private[Viewer]

    @classmethod
    def of(cls, row: models.Refund, viewer: Viewer) -> Refund:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            amount=Money(amount=row.amount, currency=row.currency),
            quantity=row.quantity,
            reason=row.reason,
            gateway_refund_id=row.gateway_refund_id,
            failure_reason=row.failure_reason,
            created_at=row.created_at,
            row=row,
            viewer=viewer,
        )

    @strawberry.field(
        description="The item whose units were refunded; null for money the order did not owe "
        "(reason UNOWED_CAPTURE), which belongs to no item."
    )
    async def order_item(self, info: JCInfo) -> OrderItem | None:
        if self.row.order_item_id is None:
            return None
        rows = await info.context.loaders.items_by_order.load(self.row.order_id)
        item = next((r for r in rows if r.id == self.row.order_item_id), None)
        return OrderItem.of(item, self.viewer) if item is not None else None


@strawberry.type(description="Money captured that the order did not owe, returned automatically.")
class AutomaticRefund:
    id: strawberry.ID
    status: RefundStatus
    amount: Money
    gateway_refund_id: str | None
    failure_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.Refund) -> AutomaticRefund:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            amount=Money(amount=row.amount, currency=row.currency),
            gateway_refund_id=row.gateway_refund_id,
            failure_reason=row.failure_reason,
            created_at=row.created_at,
        )


@strawberry.type(description="One entry of an order's history: what changed, and who or what did.")
class OrderEvent:
    kind: str
    from_status: str | None
    to_status: str | None
    actor: str
    created_at: datetime

    @classmethod
    def of(cls, row: models.OrderEvent) -> OrderEvent:
        return cls(
            kind=row.kind,
            from_status=row.from_status,
            to_status=row.to_status,
            actor=row.actor,
            created_at=row.created_at,
        )


@strawberry.type
class OrderItem:
    id: strawberry.ID
    product_name: str
    quantity: int
    cancelled_quantity: int
    unit_price: Money
    line_total: Money
    status: OrderItemStatus
    # Where the units are (resolvers/progress.py): cumulative shipped/delivered/returned counts,
    # and the units in an open return.
    shipped_quantity: int
    delivered_quantity: int
    return_requested_quantity: int
    returned_quantity: int
    row: strawberry.Private[models.OrderItem]
    viewer: strawberry.Private[Viewer]

    @classmethod
    def of(cls, row: models.OrderItem, viewer: Viewer) -> OrderItem:
        return cls(
            id=strawberry.ID(str(row.id)),
            product_name=row.product_name,
            quantity=row.quantity,
            cancelled_quantity=row.cancelled_quantity,
            unit_price=Money(amount=row.unit_price, currency=row.currency),
            line_total=Money(amount=row.unit_price * row.quantity, currency=row.currency),
            status=row.status,
            shipped_quantity=row.shipped_quantity,
            delivered_quantity=row.delivered_quantity,
            return_requested_quantity=row.return_requested_quantity,
            returned_quantity=row.returned_quantity,
            row=row,
            viewer=viewer,
        )

    @strawberry.field(description="Returns of this item, newest last.")
    async def returns(
        self, info: JCInfo
    ) -> list[Annotated[ItemReturn, strawberry.lazy("joycart.schema.fulfilment_types")]]:
        from joycart.schema.fulfilment_types import item_returns

        return await item_returns(info, self.row, self.viewer)

    @strawberry.field(description="The order, as this viewer may see it (a seller: their part).")
    async def order(self, info: JCInfo) -> Order:
        order = await info.context.loaders.orders.load(self.row.order_id)
        assert order is not None
        return Order.of(order, self.viewer)

    @strawberry.field(description="Null once the seller deleted the product; the name is kept.")
    async def product(self, info: JCInfo) -> Product | None:
        if self.row.product_id is None:
            return None
        row = await info.context.loaders.products.load(self.row.product_id)
        return Product.of(row, self.viewer) if row is not None and row.deleted_at is None else None

    @strawberry.field
    async def seller(self, info: JCInfo) -> User:
        seller = await info.context.loaders.users.load(self.row.seller_id)
        assert seller is not None
        return User.of(seller, self.viewer)

    @strawberry.field
    async def refunds(self, info: JCInfo) -> list[Refund]:
        rows = await info.context.loaders.refunds_by_item.load(self.row.id)
        return [Refund.of(r, self.viewer) for r in rows]


@strawberry.type(
    description="An order. Its buyer sees all of it; a seller of one of its items sees their "
    "items, the refunds and events of those items, and no payment."
)
class Order:
    id: strawberry.ID
    status: OrderStatus
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    row: strawberry.Private[models.Order]
    scope: strawberry.Private[OrderScope]

    @classmethod
    def of(cls, row: models.Order, viewer: Viewer) -> Order:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            created_at=row.created_at,
            expires_at=row.expires_at,
            paid_at=row.paid_at,
            row=row,
            scope=OrderScope.of(viewer, row),
        )

    @property
    def viewer(self) -> Viewer:
        return self.scope.viewer

    async def _items(self, info: JCInfo) -> list[models.OrderItem]:
        return self.scope.items(await info.context.loaders.items_by_order.load(self.row.id))

    @strawberry.field(
        graphql_type=Money,
        description="What the order cost when placed; for a seller, the value of their items.",
    )
    def total(self, info: JCInfo) -> Money | Awaitable[Money]:
        if self.scope.whole:
            return Money(amount=self.row.total_amount, currency=self.row.currency)
        return self._seller_total(info)

    async def _seller_total(self, info: JCInfo) -> Money:
        items = await self._items(info)
        amount = sum(i.unit_price * i.quantity for i in items)
        return Money(amount=amount, currency=self.row.currency)

    @strawberry.field(description="The items (a seller: their own).")
    async def items(self, info: JCInfo) -> list[OrderItem]:
        return [OrderItem.of(r, self.viewer) for r in await self._items(info)]

    @strawberry.field(description="The current payment session; null for anyone but the buyer.")
    async def payment(self, info: JCInfo) -> Payment | None:
        if not self.scope.sees_payment:
            return None
        row = await info.context.loaders.payment_by_order.load(self.row.id)
        key_id = info.context.services.gateway.key_id
        return Payment.of(row, key_id) if row is not None else None

    @strawberry.field(description="Refunds of cancelled units (a seller: of their items).")
    async def refunds(self, info: JCInfo) -> list[Refund]:
        loaders = info.context.loaders
        rows = [r for r in await loaders.refunds_by_order.load(self.row.id) if r.order_item_id]
        if not self.scope.whole:
            rows = self.scope.about_items(rows, await self._items(info))
        return [Refund.of(r, self.viewer) for r in rows]

    @strawberry.field(description="Money the order did not owe, returned; empty but for the buyer.")
    async def automatic_refunds(self, info: JCInfo) -> list[AutomaticRefund]:
        if not self.scope.sees_payment:
            return []
        rows = await info.context.loaders.refunds_by_order.load(self.row.id)
        return [AutomaticRefund.of(r) for r in rows if r.order_item_id is None]

    @strawberry.field(
        description="Where the order ships; null until the buyer chooses. The sellers of its "
        "items see it too: they ship there."
    )
    async def shipping_address(
        self, info: JCInfo
    ) -> Annotated[ShippingAddress, strawberry.lazy("joycart.schema.addresses")] | None:
        from joycart.schema.addresses import order_shipping_address

        return await order_shipping_address(info, self.row)

    @strawberry.field(description="Parcels sent, with tracking (a seller sees their own only).")
    async def shipments(
        self, info: JCInfo
    ) -> list[Annotated[Shipment, strawberry.lazy("joycart.schema.fulfilment_types")]]:
        from joycart.schema.fulfilment_types import order_shipments

        return await order_shipments(info, self.row, self.scope)

    @strawberry.field(description="Returns asked for (a seller sees those of their items only).")
    async def returns(
        self, info: JCInfo
    ) -> list[Annotated[ItemReturn, strawberry.lazy("joycart.schema.fulfilment_types")]]:
        from joycart.schema.fulfilment_types import order_returns

        return await order_returns(info, self.row, self.scope)

    @strawberry.field(
        description="The order's history, oldest first (at most its latest 100 entries); a "
        "seller sees the entries about their items."
    )
    async def events(self, info: JCInfo) -> list[OrderEvent]:
        rows = await info.context.loaders.events_by_order.load(self.row.id)
        if not self.scope.whole:
            rows = self.scope.about_items(rows, await self._items(info))
        return [OrderEvent.of(r) for r in rows]
