"""Per-request DataLoaders: one query per kind of object per page, whatever the page size.

A batch normally opens its own short session (sibling fields resolve concurrently, and one
session cannot run two statements at once). A resolver that already holds a session for a whole
page can load through the same loaders with `load_many_in(session, keys)` instead: the batch runs
on that session (no second connection from the pool) and its results are remembered in the
loader, so a later `load` of the same key costs nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from joycart.db import Sessions
from joycart.models import (
    Order,
    OrderAddress,
    OrderItem,
    Payment,
    Product,
    ProductImage,
    Refund,
    Return,
    Role,
    Shipment,
    ShipmentLine,
    User,
)

K = uuid.UUID
V = TypeVar("V")
Fetch = Callable[[AsyncSession, Sequence[K]], Awaitable[list[V]]]


class SessionLoader(DataLoader[K, V]):
    """A DataLoader whose batch function can also run on a session the caller holds."""

    def __init__(self, sessions: Sessions, fetch: Fetch[V]) -> None:
        async def load_fn(keys: list[K]) -> list[V]:
            async with sessions() as session:
                return await fetch(session, keys)

        super().__init__(load_fn=load_fn)
        self._fetch = fetch

    async def load_many_in(self, session: AsyncSession, keys: Sequence[K]) -> list[V]:
        """Values for `keys` in order; keys not yet loaded are fetched in one batch on `session`."""
        missing = list(dict.fromkeys(k for k in keys if self.cache_map.get(k) is None))
        if missing:
            self.prime_many(dict(zip(missing, await self._fetch(session, missing), strict=True)))
        values: list[V] = []
        for key in keys:  # the usual case: every future is already done, no await per key
            future = self.load(key)
            if not (isinstance(future, asyncio.Future) and future.done()):
                return list(await self.load_many(keys))
            values.append(future.result())
        return values


class UserCard(NamedTuple):
    """What the API shows of an account: plain columns, no ORM object, never the password hash."""

    id: uuid.UUID
    email: str
    name: str
    role: Role


class ImageCard(NamedTuple):
    id: uuid.UUID
    product_id: uuid.UUID
    url: str


async def _user_cards(session: AsyncSession, keys: Sequence[K]) -> list[UserCard | None]:
    rows = await session.execute(
        select(User.id, User.email, User.name, User.role).where(User.id.in_(keys))
    )
    found = {row[0]: UserCard._make(row) for row in rows}
    return [found.get(key) for key in keys]


async def _image_cards(session: AsyncSession, keys: Sequence[K]) -> list[list[ImageCard]]:
    rows = await session.execute(
        select(ProductImage.id, ProductImage.product_id, ProductImage.url)
        .where(ProductImage.product_id.in_(keys))
        .order_by(ProductImage.created_at, ProductImage.id)
    )
    groups: dict[K, list[ImageCard]] = defaultdict(list)
    for row in rows:
        groups[row[1]].append(ImageCard._make(row))
    return [groups.get(key, []) for key in keys]


def _by_id(model: Any) -> Fetch[Any]:
    async def fetch(session: AsyncSession, keys: Sequence[K]) -> list[Any]:
        rows = (await session.scalars(select(model).where(model.id.in_(keys)))).all()
        found = {row.id: row for row in rows}
        return [found.get(key) for key in keys]

    return fetch


def _grouped(model: Any, column: Any, order_by: Any) -> Fetch[list[Any]]:
    async def fetch(session: AsyncSession, keys: Sequence[K]) -> list[list[Any]]:
        rows = (
            await session.scalars(
                select(model).where(column.in_(keys)).order_by(order_by, model.id)
            )
        ).all()
        groups: dict[K, list[Any]] = defaultdict(list)
        for row in rows:
            groups[getattr(row, column.key)].append(row)
        return [groups.get(key, []) for key in keys]

    return fetch


async def _current_payment(session: AsyncSession, keys: Sequence[K]) -> list[Payment | None]:
    rows = (
        await session.scalars(
            select(Payment)
            .where(Payment.order_id.in_(keys))
            .order_by(Payment.order_id, Payment.sequence.desc())
            .ext(distinct_on(Payment.order_id))
        )
    ).all()
    found = {row.order_id: row for row in rows}
    return [found.get(key) for key in keys]


async def _order_address(session: AsyncSession, keys: Sequence[K]) -> list[OrderAddress | None]:
    rows = (
        await session.scalars(select(OrderAddress).where(OrderAddress.order_id.in_(keys)))
    ).all()
    found = {row.order_id: row for row in rows}
    return [found.get(key) for key in keys]


class Loaders:
    def __init__(self, sessions: Sessions) -> None:
        self.users = SessionLoader[UserCard | None](sessions, _user_cards)
        self.products = SessionLoader[Product | None](sessions, _by_id(Product))
        self.orders = SessionLoader[Order | None](sessions, _by_id(Order))
        self.images_by_product = SessionLoader[list[ImageCard]](sessions, _image_cards)
        self.items_by_order = SessionLoader[list[OrderItem]](
            sessions, _grouped(OrderItem, OrderItem.order_id, OrderItem.position)
        )
        self.refunds_by_order = SessionLoader[list[Refund]](
            sessions, _grouped(Refund, Refund.order_id, Refund.created_at)
        )
        self.refunds_by_item = SessionLoader[list[Refund]](
            sessions, _grouped(Refund, Refund.order_item_id, Refund.created_at)
        )
        self.payment_by_order = SessionLoader[Payment | None](sessions, _current_payment)
        # Fulfilment (schema/fulfilment.py, schema/addresses.py).
        self.address_by_order = SessionLoader[OrderAddress | None](sessions, _order_address)
        self.shipments_by_order = SessionLoader[list[Shipment]](
            sessions, _grouped(Shipment, Shipment.order_id, Shipment.created_at)
        )
        self.lines_by_shipment = SessionLoader[list[ShipmentLine]](
            sessions, _grouped(ShipmentLine, ShipmentLine.shipment_id, ShipmentLine.order_item_id)
        )
        self.returns_by_order = SessionLoader[list[Return]](
            sessions, _grouped(Return, Return.order_id, Return.created_at)
        )
