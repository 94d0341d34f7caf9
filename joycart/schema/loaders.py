"""Per-request DataLoaders: one query per kind of object per page, whatever the page size."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from strawberry.dataloader import DataLoader

from joycart.db import Sessions
from joycart.models import Order, OrderItem, Payment, Product, ProductImage, Refund, User

K = uuid.UUID
R = TypeVar("R")


class Loaders:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self.users = DataLoader[K, User | None](self._by_id(User))
        self.products = DataLoader[K, Product | None](self._by_id(Product))
        self.orders = DataLoader[K, Order | None](self._by_id(Order))
        self.images_by_product = DataLoader[K, list[ProductImage]](
            self._grouped(ProductImage, ProductImage.product_id, ProductImage.created_at)
        )
        self.items_by_order = DataLoader[K, list[OrderItem]](
            self._grouped(OrderItem, OrderItem.order_id, OrderItem.position)
        )
        self.refunds_by_order = DataLoader[K, list[Refund]](
            self._grouped(Refund, Refund.order_id, Refund.created_at)
        )
        self.refunds_by_item = DataLoader[K, list[Refund]](
            self._grouped(Refund, Refund.order_item_id, Refund.created_at)
        )
        self.payment_by_order = DataLoader[K, Payment | None](self._current_payment)

    def _by_id(self, model: Any) -> Callable[[Sequence[K]], Any]:
        async def load(keys: Sequence[K]) -> list[Any]:
            async with self._sessions() as session:
                rows = (await session.scalars(select(model).where(model.id.in_(keys)))).all()
            found = {row.id: row for row in rows}
            return [found.get(key) for key in keys]

        return load

    def _grouped(self, model: Any, column: Any, order_by: Any) -> Callable[[Sequence[K]], Any]:
        async def load(keys: Sequence[K]) -> list[list[Any]]:
            async with self._sessions() as session:
                rows = (
                    await session.scalars(
                        select(model).where(column.in_(keys)).order_by(order_by, model.id)
                    )
                ).all()
            groups: dict[K, list[Any]] = defaultdict(list)
            for row in rows:
                groups[getattr(row, column.key)].append(row)
            return [groups.get(key, []) for key in keys]

        return load

    async def _current_payment(self, keys: Sequence[K]) -> list[Payment | None]:
        async with self._sessions() as session:
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
