"""Who is looking, and what they may see: the one rule for every path to an order or a user.

The rule (CONTRACT.md, "Who sees what"):

- **Users.** `User.email` is shown to its owner alone; everyone else sees a user's public face:
  `id`, `name`, `role`.
- **Orders.** The buyer sees the whole order. A seller of one of its items sees, through
  `OrderScope`:
  - the order's `id`, `status` and dates;
  - `items`: their own items only; `total`: the value of those items;
  - `refunds`: refunds of their own items; `events`: events about their own items
    (`order_events.order_item_id`);
  - `shipments` and `returns`: their own (each belongs to one seller's items);
  - `shippingAddress`: the address they ship to (the buyer's name, phone and address: needed to
    ship; never the buyer's email);
  - never the buyer's payment (`payment` is null) and never `automaticRefunds` (empty).

How it is kept on every path: each GraphQL object built from a row of an order or an account
carries the `Viewer` it was built for (`strawberry.Private`), and hands it to every object it
builds. `Order` decides what of itself to show with `OrderScope.of(viewer, order_row)`, so
`order(id)`, `orders`, `sellerOrderItems { node { order } }`, `Refund.orderItem.order` and any
deeper path all apply the same rule, whatever the root was. Entry points decide only whether an
order or item may be reached at all (`resolvers.orders.visible_order`, `seller_items`,
`cancel_item`); an `OrderItem` or `Refund` object exists only for a viewer allowed to see it.

Adding a type that hangs off an order (shipments, returns, ...):

1. give it `viewer: strawberry.Private[Viewer]` and build it with the viewer of its parent;
2. on `Order`, list only the rows `OrderScope.sees_item` admits (a row that concerns several
   items: only when the scope sees every one of them, or show only the seen part);
3. build every nested object (`User.of(row, viewer)`, `OrderItem.of(row, viewer)`, ...) with
   that same viewer; never a default;
4. add the type to the privacy test's reach (`tests/api/test_privacy.py` walks every field of
   every type it reaches, so a new field is checked as soon as a path leads to it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from joycart import models


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller a GraphQL object was built for (None: anonymous)."""

    user_id: uuid.UUID | None

    @classmethod
    def of(cls, user: models.User | None) -> Viewer:
        return cls(user.id if user is not None else None)

    def is_user(self, user_id: uuid.UUID) -> bool:
        return self.user_id is not None and self.user_id == user_id


ANONYMOUS = Viewer(None)


class _ConcernsItem(Protocol):
    @property
    def order_item_id(self) -> uuid.UUID | None: ...


class _OneSellers(Protocol):
    @property
    def seller_id(self) -> uuid.UUID: ...


RowT = TypeVar("RowT", bound=_ConcernsItem)
SellersRowT = TypeVar("SellersRowT", bound=_OneSellers)


@dataclass(frozen=True, slots=True)
class OrderScope:
    """What of one order a viewer sees: all of it (its buyer) or a seller's part."""

    viewer: Viewer
    whole: bool

    @classmethod
    def of(cls, viewer: Viewer, order: models.Order) -> OrderScope:
        return cls(viewer=viewer, whole=viewer.is_user(order.buyer_id))

    @property
    def sees_payment(self) -> bool:
        """The buyer's payment identifiers and money the order did not owe: the buyer's only."""
        return self.whole

    def sees_item(self, item: models.OrderItem) -> bool:
        return self.whole or self.viewer.is_user(item.seller_id)

    def items(self, rows: Iterable[models.OrderItem]) -> list[models.OrderItem]:
        return [row for row in rows if self.sees_item(row)]

    def about_items(self, rows: Sequence[RowT], items: Iterable[models.OrderItem]) -> list[RowT]:
        """Rows that concern an item (refunds, events): those of the items this scope sees.

        For the buyer every row, including those about no item (an order-level event); for a
        seller only rows about one of their items.
        """
        if self.whole:
            return list(rows)
        seen = {item.id for item in items if self.sees_item(item)}
        return [row for row in rows if row.order_item_id is not None and row.order_item_id in seen]

    def of_sellers(self, rows: Sequence[SellersRowT]) -> list[SellersRowT]:
        """Rows that belong to one seller (a shipment, a return): the buyer's all, a seller's
        their own."""
        if self.whole:
            return list(rows)
        return [row for row in rows if self.viewer.is_user(row.seller_id)]
