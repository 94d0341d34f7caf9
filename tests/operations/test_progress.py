"""The status rule of resolvers/progress.py: its cases, and that every status change any sequence
of cancels, shipments, deliveries and returns can make is a row of the transition tables."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from joycart.models import OrderItemStatus, OrderStatus
from joycart.resolvers import states
from joycart.resolvers.progress import ITEM_STATUS, ORDER_STATUS, Stage, Units, stage


def units(q: int, c: int = 0, s: int = 0, d: int = 0, p: int = 0, r: int = 0) -> Units:
    return Units(quantity=q, cancelled=c, shipped=s, delivered=d, return_requested=p, returned=r)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (units(3), Stage.OPEN),
        (units(3, c=1), Stage.PARTIALLY_CANCELLED),
        (units(3, c=3), Stage.CANCELLED),
        (units(3, s=1), Stage.PARTIALLY_SHIPPED),
        (units(3, c=1, s=1), Stage.PARTIALLY_SHIPPED),
        (units(3, c=1, s=2), Stage.SHIPPED),  # cancelled units do not hold back SHIPPED
        (units(3, s=3, d=2), Stage.SHIPPED),  # one parcel still on its way
        (units(3, s=2, d=2), Stage.PARTIALLY_SHIPPED),
        (units(3, s=3, d=3), Stage.DELIVERED),
        (units(3, s=3, d=3, p=1), Stage.RETURN_REQUESTED),
        (units(3, s=3, d=3, p=1, r=2), Stage.RETURN_REQUESTED),  # open returns come first
        (units(3, s=3, d=3, r=1), Stage.PARTIALLY_RETURNED),
        (units(3, s=1, d=1, r=1), Stage.PARTIALLY_RETURNED),
        (units(3, c=2, s=1, d=1, r=1), Stage.RETURNED),
        (units(3, s=3, d=3, r=3), Stage.RETURNED),
    ],
)
def test_the_rule(counts: Units, expected: Stage) -> None:
    assert stage(counts) is expected


def test_every_stage_names_a_status_of_items_and_of_orders() -> None:
    assert set(ITEM_STATUS.values()) == set(OrderItemStatus)
    assert set(ORDER_STATUS.values()) == set(OrderStatus) - {
        OrderStatus.PENDING_PAYMENT,
        OrderStatus.EXPIRED,
    }


Item = tuple[
    int, int, int, int, int, int
]  # quantity, cancelled, shipped, delivered, open, returned


def _steps(item: Item) -> Iterator[Item]:
    """Every single operation on one item, of any number of units."""
    q, c, s, d, p, r = item
    for k in range(1, q + 1):
        if q - c - s >= k:
            yield (q, c + k, s, d, p, r)  # cancel
            yield (q, c, s + k, d, p, r)  # ship
        if s - d >= k:
            yield (q, c, s, d + k, p, r)  # deliver
        if d - p - r >= k:
            yield (q, c, s, d, p + k, r)  # request a return
        if p >= k:
            yield (q, c, s, d, p - k, r)  # reject
            yield (q, c, s, d, p - k, r + k)  # receive


def _order_steps(order: tuple[Item, ...]) -> Iterator[tuple[Item, ...]]:
    for i, item in enumerate(order):
        for after in _steps(item):
            yield (*order[:i], after, *order[i + 1 :])
    # One shipment, or one delivery, may cover every item of the order at once.
    shipped = tuple((q, c, q - c, d, p, r) for q, c, s, d, p, r in order)
    arrived = tuple((q, c, s, s, p, r) for q, c, s, d, p, r in order)
    yield from (o for o in (shipped, arrived) if o != order)


def _total(order: tuple[Item, ...]) -> Units:
    return Units(*(sum(column) for column in zip(*order, strict=True)))


def test_every_change_the_counts_can_make_is_in_the_transition_tables() -> None:
    """Walk every state reachable from fresh orders of up to three items and four units."""
    item_seen: set[tuple[OrderItemStatus, OrderItemStatus]] = set()
    order_seen: set[tuple[OrderStatus, OrderStatus]] = set()
    for shape in [(1,), (2,), (4,), (1, 1), (2, 1), (1, 1, 1), (2, 2)]:
        start = tuple((q, 0, 0, 0, 0, 0) for q in shape)
        todo, visited = [start], {start}
        while todo:
            order = todo.pop()
            for after in _order_steps(order):
                for before_item, after_item in zip(order, after, strict=True):
                    a = ITEM_STATUS[stage(Units(*before_item))]
                    b = ITEM_STATUS[stage(Units(*after_item))]
                    if a is not b:
                        item_seen.add((a, b))
                a_order = ORDER_STATUS[stage(_total(order))]
                b_order = ORDER_STATUS[stage(_total(after))]
                if a_order is not b_order:
                    order_seen.add((a_order, b_order))
                if after not in visited:
                    visited.add(after)
                    todo.append(after)
    for a, b in item_seen:
        assert b in states.ITEM_TRANSITIONS[a], f"item {a.value} -> {b.value} is not in the table"
    for oa, ob in order_seen:
        assert ob in states.ORDER_TRANSITIONS[oa], f"order {oa.value} -> {ob.value} is missing"
    # And the tables list nothing the counts cannot do (beyond payment, expiry, self-loops).
    listed_items = {
        (a, b) for a, targets in states.ITEM_TRANSITIONS.items() for b in targets if a is not b
    }
    assert listed_items == item_seen
    listed_orders = {
        (a, b)
        for a, targets in states.ORDER_TRANSITIONS.items()
        for b in targets
        if a is not b and a is not OrderStatus.PENDING_PAYMENT
    }
    assert listed_orders == order_seen
