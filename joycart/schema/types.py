"""GraphQL object types, each built from a row it keeps privately (rows never leak as types)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from joycart import models
from joycart.models.orders import OrderItemStatus, OrderStatus
from joycart.models.payments import PaymentStatus, RefundReason, RefundStatus
from joycart.models.users import Role
from joycart.schema.context import Context
from joycart.schema.loaders import ImageCard, UserCard

# The model enums are the GraphQL enums: registering them keeps one definition of each state.
strawberry.enum(Role, description="USER buys; SELLER sells.")
strawberry.enum(OrderStatus)
strawberry.enum(OrderItemStatus)
strawberry.enum(PaymentStatus)
strawberry.enum(RefundStatus)
strawberry.enum(RefundReason)

JCInfo = Info[Context, None]

if TYPE_CHECKING:
    from joycart.schema.addresses import ShippingAddress
    from joycart.schema.fulfilment_types import ItemReturn, Shipment


@strawberry.type(description="An amount in the currency's minor unit (paise for INR).")
class Money:
    amount: int
    currency: str


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    name: str
    role: Role

    @classmethod
    def of(cls, row: models.User | UserCard) -> User:
        return cls(id=strawberry.ID(str(row.id)), email=row.email, name=row.name, role=row.role)


@strawberry.type
class ProductImage:
    id: strawberry.ID
    url: str


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    description: str
    price: Money
    stock: int
    created_at: datetime
    row: strawberry.Private[models.Product]
    # Filled by `Product.many` for a whole page at once (through the same DataLoaders), so the
    # page's fields complete synchronously: an awaitable per field is what makes GraphQL slow.
    preloaded_seller: strawberry.Private[User | None] = None
    preloaded_images: strawberry.Private[list[ProductImage] | None] = None

    @classmethod
    def of(
        cls,
        row: models.Product,
        *,
        seller: User | None = None,
        images: list[ProductImage] | None = None,
    ) -> Product:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            description=row.description,
            price=Money(amount=row.price, currency=row.currency),
            stock=row.stock,
            created_at=row.created_at,
            row=row,
            preloaded_seller=seller,
            preloaded_images=images,
        )

    @classmethod
    async def many(
        cls,
        info: JCInfo,
        session: AsyncSession,
        rows: Sequence[models.Product],
        *,
        seller: bool,
        images: bool,
    ) -> list[Product]:
        """A page of products with sellers and images loaded up front, through the request's
        DataLoaders but on the page's own session: one statement each, no other connection."""
        loaders = info.context.loaders
        users: dict[uuid.UUID, User] = {}
        if seller:
            for user_row in await loaders.users.load_many_in(session, [r.seller_id for r in rows]):
                assert user_row is not None
                users.setdefault(user_row.id, User.of(user_row))
        image_lists: list[list[ImageCard]] = []
        if images:
            image_lists = await loaders.images_by_product.load_many_in(
                session, [r.id for r in rows]
            )
        return [
            cls.of(
                row,
                seller=users[row.seller_id] if seller else None,
                images=_images(image_lists[i]) if images else None,
            )
            for i, row in enumerate(rows)
        ]

    @strawberry.field(graphql_type=User)
    def seller(self, info: JCInfo) -> User | Awaitable[User]:
        if self.preloaded_seller is not None:
            return self.preloaded_seller
        return self._load_seller(info)

    @strawberry.field(graphql_type=list[ProductImage])
    def images(self, info: JCInfo) -> list[ProductImage] | Awaitable[list[ProductImage]]:
        if self.preloaded_images is not None:
            return self.preloaded_images
        return self._load_images(info)

    async def _load_seller(self, info: JCInfo) -> User:
        seller = await info.context.loaders.users.load(self.row.seller_id)
        assert seller is not None
        return User.of(seller)

    async def _load_images(self, info: JCInfo) -> list[ProductImage]:
        return _images(await info.context.loaders.images_by_product.load(self.row.id))


def _images(rows: Sequence[ImageCard]) -> list[ProductImage]:
    return [ProductImage(id=strawberry.ID(str(r.id)), url=r.url) for r in rows]


def selected_subfields(info: JCInfo, path: Sequence[str]) -> set[str]:
    """Names of the fields selected at `path` below the current field, through fragments."""
    return _subfields(info.selected_fields, path)


def _subfields(selections: Iterable[Selection], path: Sequence[str]) -> set[str]:
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField) and not path:
            names.add(selection.name)
        elif isinstance(selection, SelectedField):
            if selection.name == path[0]:
                names |= _subfields(selection.selections, path[1:])
        else:  # a fragment spread or inline fragment: its fields count as selected here
            names |= _subfields(selection.selections, path)
    return names


@strawberry.type
class CartItem:
    product: Product
    quantity: int
    line_total: Money


@strawberry.type
class Cart:
    items: list[CartItem]
    total: Money


@strawberry.type
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

    @classmethod
    def of(cls, row: models.Refund) -> Refund:
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
        )

    @strawberry.field
    async def order_item(self, info: JCInfo) -> OrderItem:
        assert self.row.order_item_id is not None
        rows = await info.context.loaders.items_by_order.load(self.row.order_id)
        return OrderItem.of(next(r for r in rows if r.id == self.row.order_item_id))


@strawberry.type(description="Money captured that the order did not owe, returned automatically.")
class AutomaticRefund:
    id: strawberry.ID
    status: RefundStatus
    amount: Money
    gateway_refund_id: str | None
    failure_reason: str | None
    created_at: datetime


@strawberry.type(description="One entry of an order's history: what changed, and who or what did.")
class OrderEvent:
    kind: str
    from_status: str | None
    to_status: str | None
    actor: str
    created_at: datetime


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

    @classmethod
    def of(cls, row: models.OrderItem) -> OrderItem:
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
        )

    @strawberry.field(description="Returns of this item, newest last.")
    async def returns(
        self, info: JCInfo
    ) -> list[Annotated[ItemReturn, strawberry.lazy("joycart.schema.fulfilment_types")]]:
        from joycart.schema.fulfilment_types import item_returns

        return await item_returns(info, self.row)

    @strawberry.field
    async def order(
        self, info: JCInfo
    ) -> Annotated[Order, strawberry.lazy("joycart.schema.types")]:
        order = await info.context.loaders.orders.load(self.row.order_id)
        assert order is not None
        return Order.of(order)

    @strawberry.field(description="Null once the seller deleted the product; the name is kept.")
    async def product(self, info: JCInfo) -> Product | None:
        if self.row.product_id is None:
            return None
        row = await info.context.loaders.products.load(self.row.product_id)
        return Product.of(row) if row is not None and row.deleted_at is None else None

    @strawberry.field
    async def seller(self, info: JCInfo) -> User:
        seller = await info.context.loaders.users.load(self.row.seller_id)
        assert seller is not None
        return User.of(seller)

    @strawberry.field
    async def refunds(self, info: JCInfo) -> list[Refund]:
        return [Refund.of(r) for r in await info.context.loaders.refunds_by_item.load(self.row.id)]


@strawberry.type
class Order:
    id: strawberry.ID
    status: OrderStatus
    total: Money
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    row: strawberry.Private[models.Order]

    @classmethod
    def of(cls, row: models.Order) -> Order:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            total=Money(amount=row.total_amount, currency=row.currency),
            created_at=row.created_at,
            expires_at=row.expires_at,
            paid_at=row.paid_at,
            row=row,
        )

    @strawberry.field
    async def items(self, info: JCInfo) -> list[OrderItem]:
        return [
            OrderItem.of(r) for r in await info.context.loaders.items_by_order.load(self.row.id)
        ]

    @strawberry.field(description="The current payment session: what the SPA hands to Razorpay.")
    async def payment(self, info: JCInfo) -> Payment | None:
        row = await info.context.loaders.payment_by_order.load(self.row.id)
        key_id = info.context.services.gateway.key_id
        return Payment.of(row, key_id) if row is not None else None

    @strawberry.field
    async def refunds(self, info: JCInfo) -> list[Refund]:
        rows = await info.context.loaders.refunds_by_order.load(self.row.id)
        return [Refund.of(r) for r in rows if r.order_item_id is not None]

    @strawberry.field
    async def automatic_refunds(self, info: JCInfo) -> list[AutomaticRefund]:
        rows = await info.context.loaders.refunds_by_order.load(self.row.id)
        return [
            AutomaticRefund(
                id=strawberry.ID(str(r.id)),
                status=r.status,
                amount=Money(amount=r.amount, currency=r.currency),
                gateway_refund_id=r.gateway_refund_id,
                failure_reason=r.failure_reason,
                created_at=r.created_at,
            )
            for r in rows
            if r.order_item_id is None
        ]

    @strawberry.field(description="Where the order ships; null until the buyer chooses.")
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

        return await order_shipments(info, self.row)

    @strawberry.field(description="Returns asked for (a seller sees those of their items only).")
    async def returns(
        self, info: JCInfo
    ) -> list[Annotated[ItemReturn, strawberry.lazy("joycart.schema.fulfilment_types")]]:
        from joycart.schema.fulfilment_types import order_returns

        return await order_returns(info, self.row)

    @strawberry.field(description="The order's history, oldest first.")
    async def events(self, info: JCInfo) -> list[OrderEvent]:
        from sqlalchemy import select

        async with info.context.read() as session:
            rows = (
                await session.scalars(
                    select(models.OrderEvent)
                    .where(models.OrderEvent.order_id == self.row.id)
                    .order_by(models.OrderEvent.id)
                )
            ).all()
        return [
            OrderEvent(
                kind=r.kind,
                from_status=r.from_status,
                to_status=r.to_status,
                actor=r.actor,
                created_at=r.created_at,
            )
            for r in rows
        ]
