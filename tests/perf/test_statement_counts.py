"""SQL statements sent per hot operation, counted exactly: a new round trip cannot slip in unseen.

Each count is every statement the engine sends while one request is served (the transaction's
BEGIN and COMMIT are not cursor executions and are not counted). When a count changes on
purpose, update the number here and say why in the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.api.test_cancellation import cancel, paid_order
from tests.api.test_catalog import _insert_image
from tests.helpers import Api

CATALOGUE = """{ products(first: 50) { edges { cursor node { id name description
  price { amount currency } stock seller { id name } images { id url } } }
  pageInfo { hasNextPage endCursor } } }"""


class Statements(list[str]):
    """The SQL text of each statement sent while the block ran, in order."""

    def check(self, expected: int) -> None:
        listing = "\n".join(f"{i + 1}. {' '.join(s.split())[:160]}" for i, s in enumerate(self))
        assert len(self) == expected, f"{len(self)} statements, expected {expected}:\n{listing}"


@contextmanager
def counting(services: Services) -> Iterator[Statements]:
    sent = Statements()

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    engine = services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_catalogue_page_of_fifty_with_sellers_and_images_is_three_statements(
    api: Api, services: Services
) -> None:
    sellers = [await api.register("SELLER") for _ in range(3)]
    for i in range(60):
        product = await api.create_product(sellers[i % 3], name=f"Product {i}")
        await _insert_image(services, product)
    with counting(services) as sent:
        data = await api.gql(CATALOGUE)
    assert len(data["products"]["edges"]) == 50
    sent.check(3)
    # The sellers and images are looked up with the keys as one array parameter: the SQL text
    # is the same whatever the page size, so it is not re-rendered per request and PostgreSQL
    # reuses its prepared statement (`IN (...)` rendered one parameter per key).
    with counting(services) as small:
        await api.gql(CATALOGUE.replace("first: 50", "first: 2"))
    small.check(3)
    assert small[1:] == sent[1:]
    assert all("= ANY (" in statement for statement in sent[1:]), sent


@pytest.mark.parametrize(("lines", "expected"), [(1, 23), (3, 25)])
async def test_checkout_statement_count_is_fixed(
    api: Api, services: Services, lines: int, expected: int
) -> None:
    buyer = await api.register("USER")
    for i in range(lines):
        seller = await api.register("SELLER")
        product = await api.create_product(seller, price=10_000 + i, stock=5, name=f"P{i}")
        await api.add_to_cart(buyer, product, 1)
    with counting(services) as sent:
        result = await api.checkout(buyer)
    assert result["errors"] == []
    assert len(result["order"]["items"]) == lines
    sent.check(expected)


async def test_capture_webhook_statement_count_is_fixed(
    api: Api, services: Services, razorpay: RazorpaySimulator
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=20_000, stock=5)
    await api.add_to_cart(buyer, product, 1)
    rzp_order = (await api.checkout(buyer))["order"]["payment"]["razorpayOrderId"]
    captured = next(d for d in razorpay.pay(rzp_order) if d.event_type == "payment.captured")
    with counting(services) as sent:
        assert await razorpay.deliver_async(captured) == 200
    assert any(s.startswith("UPDATE orders SET status") for s in sent), "the order was not paid"
    # The order is locked by a statement that reads its id from the payment; a duplicate capture
    # is told by the capture INSERT's ON CONFLICT DO NOTHING (was 13: two lookups of their own).
    sent.check(11)


async def test_cancel_item_of_paid_order_statement_count_is_fixed(
    api: Api, services: Services, razorpay: RazorpaySimulator
) -> None:
    order = await paid_order(api, razorpay)
    with counting(services) as sent:
        result = await cancel(api, order.buyer, order.items[0]["id"])
    assert result["errors"] == []
    sent.check(25)
