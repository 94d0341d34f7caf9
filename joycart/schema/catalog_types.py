"""Shared and catalog GraphQL types: Money, User, Product, Cart (import them from `types`).

Every type built from an account row carries the `Viewer` it was built for: see
`joycart.schema.viewer` for who sees what.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from joycart import models
from joycart.models.orders import OrderItemStatus, OrderStatus
from joycart.models.payments import PaymentStatus, RefundReason, RefundStatus
from joycart.models.users import Role
from joycart.resolvers.catalog import ProductCard
from joycart.schema.context import Context
from joycart.schema.loaders import ImageCard, UserCard
from joycart.schema.plans import preloaded
from joycart.schema.viewer import Viewer

# The model enums are the GraphQL enums: registering them keeps one definition of each state.
strawberry.enum(Role, description="USER buys; SELLER sells.")
strawberry.enum(OrderStatus)
strawberry.enum(OrderItemStatus)
strawberry.enum(PaymentStatus)
strawberry.enum(RefundStatus)
strawberry.enum(RefundReason)

JCInfo = Info[Context, None]


@strawberry.type(description="An amount in the currency's minor unit (paise for INR).")
class Money:
    amount: int
    currency: str


@strawberry.type(description="An account: anyone sees its id, name and role; its owner its email.")
class User:
    id: strawberry.ID
    email: str | None = strawberry.field(description="The owner's own email; null for anyone else.")
    name: str
    role: Role

    @classmethod
    def of(cls, row: models.User | UserCard, viewer: Viewer) -> User:
        return cls(
            id=strawberry.ID(str(row.id)),
            email=row.email if viewer.is_user(row.id) else None,
            name=row.name,
            role=row.role,
        )


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
    row: strawberry.Private[models.Product | ProductCard]
    viewer: strawberry.Private[Viewer]
    # Filled by `Product.many` for a whole page at once (through the same DataLoaders), so the
    # page's fields complete synchronously: an awaitable per field is what makes GraphQL slow.
    # `preloaded` lets the executor read them without calling the resolvers (schema/plans.py).
    preloaded_seller: strawberry.Private[User | None] = None
    preloaded_images: strawberry.Private[list[ProductImage] | None] = None

    @classmethod
    def of(
        cls,
        row: models.Product | ProductCard,
        viewer: Viewer,
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
            viewer=viewer,
            preloaded_seller=seller,
            preloaded_images=images,
        )

    @classmethod
    async def many(
        cls,
        info: JCInfo,
        session: AsyncSession,
        rows: Sequence[models.Product | ProductCard],
        viewer: Viewer,
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
                users.setdefault(user_row.id, User.of(user_row, viewer))
        image_lists: list[list[ImageCard]] = []
        if images:
            image_lists = await loaders.images_by_product.load_many_in(
                session, [r.id for r in rows]
            )
        return [
            cls.of(
                row,
                viewer,
                seller=users[row.seller_id] if seller else None,
                images=_images(image_lists[i]) if images else None,
            )
            for i, row in enumerate(rows)
        ]

    @strawberry.field(graphql_type=User, metadata=preloaded("preloaded_seller"))
    def seller(self, info: JCInfo) -> User | Awaitable[User]:
        if self.preloaded_seller is not None:
            return self.preloaded_seller
        return self._load_seller(info)

    @strawberry.field(graphql_type=list[ProductImage], metadata=preloaded("preloaded_images"))
    def images(self, info: JCInfo) -> list[ProductImage] | Awaitable[list[ProductImage]]:
        if self.preloaded_images is not None:
            return self.preloaded_images
        return self._load_images(info)

    async def _load_seller(self, info: JCInfo) -> User:
        seller = await info.context.loaders.users.load(self.row.seller_id)
        assert seller is not None
        return User.of(seller, self.viewer)

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
