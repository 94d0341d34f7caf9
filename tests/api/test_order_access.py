"""Who may see and change an order, and cancelling before payment."""

from __future__ import annotations

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.api.test_cancellation import CANCEL, ORDER, cancel, paid_order
from tests.helpers import Api, assert_invariants

SELLER_ITEMS = """query { sellerOrderItems(first: 10) { edges { node { id productName quantity
  order { id } } } pageInfo { hasNextPage } } }"""


async def _snapshot(services: Services) -> list[object]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM refunds), "
                "(SELECT sum(cancelled_quantity) FROM order_items), "
                "(SELECT sum(stock) FROM products), (SELECT count(*) FROM order_events)"
            )
        )
        return list(rows.one())


async def test_strangers_see_nothing_and_change_nothing(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    other_buyer = await api.register("USER")
    other_seller = await api.register("SELLER")
    before = await _snapshot(services)

    for stranger in (other_buyer, other_seller):
        result = await cancel(api, stranger, order.items[0]["id"])
        assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"]
        assert (await api.gql(ORDER, {"id": order.id}, stranger.token))["order"] is None
        items = await api.gql(SELLER_ITEMS, token=stranger.token)
        assert items["sellerOrderItems"]["edges"] == []
    anonymous = await api.gql(CANCEL, {"id": order.items[0]["id"], "q": None, "r": None})
    assert [e["code"] for e in anonymous["cancelItem"]["errors"]] == ["UNAUTHENTICATED"]
    assert (await api.gql(ORDER, {"id": order.id}))["order"] is None
    response = await api.raw(SELLER_ITEMS)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    missing = await cancel(api, order.buyer, "00000000-0000-0000-0000-000000000000")
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]
    garbage = await cancel(api, order.buyer, "not-an-id")
    assert [e["code"] for e in garbage["errors"]] == ["NOT_FOUND"]

    assert await _snapshot(services) == before


async def test_each_seller_sees_only_their_items_and_the_order_they_belong_to(
    api: Api, razorpay: RazorpaySimulator
) -> None:
    order = await paid_order(api, razorpay)
    for seller, item in zip(order.sellers, order.items, strict=True):
        edges = (await api.gql(SELLER_ITEMS, token=seller.token))["sellerOrderItems"]["edges"]
        assert [e["node"]["id"] for e in edges] == [item["id"]]
        assert edges[0]["node"]["order"]["id"] == order.id
        seen = (await api.gql(ORDER, {"id": order.id}, seller.token))["order"]
        assert seen is not None
        assert seen["id"] == order.id


async def test_cancelling_before_payment_renews_the_session_and_refunds_an_outdated_capture(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    cheap = await api.create_product(seller, price=10_000, stock=4)
    dear = await api.create_product(seller, price=30_000, stock=4)
    await api.add_to_cart(buyer, cheap, 1)
    await api.add_to_cart(buyer, dear, 2)
    placed = (await api.checkout(buyer))["order"]
    old_session = placed["payment"]["razorpayOrderId"]
    dear_item = next(i for i in placed["items"] if i["unitPrice"]["amount"] == 30_000)

    result = await cancel(api, buyer, dear_item["id"], 1)

    assert result["errors"] == []
    assert result["refund"] is None
    payment = await api.gql(
        "query($id: ID!) { order(id: $id) { status payment { amount { amount } razorpayOrderId "
        "receipt } } }",
        {"id": placed["id"]},
        buyer.token,
    )
    new = payment["order"]["payment"]
    assert payment["order"]["status"] == "PENDING_PAYMENT"
    assert new["amount"]["amount"] == 40_000
    assert new["razorpayOrderId"] not in (None, old_session)
    assert new["receipt"] == f"{placed['id']}/2"
    assert razorpay.orders[new["razorpayOrderId"]]["amount"] == 40_000

    # The buyer pays the outdated session anyway: that money is not owed and goes back.
    for delivery in razorpay.pay(old_session):
        assert await razorpay.deliver_async(delivery) == 200
    async with services.engine.connect() as conn:
        refund = (await conn.execute(text("SELECT amount, reason FROM refunds"))).one()
        status = await conn.scalar(text("SELECT status FROM orders"))
    assert (refund.amount, refund.reason) == (70_000, "UNOWED_CAPTURE")
    assert status == "PENDING_PAYMENT"

    for delivery in razorpay.pay(new["razorpayOrderId"]):
        assert await razorpay.deliver_async(delivery) == 200
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT status FROM orders")) == "PAID"
    await assert_invariants(services.engine)


async def test_cancelling_every_item_of_an_unpaid_order_cancels_it_and_returns_all_stock(
    api: Api, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=10_000, stock=4)
    await api.add_to_cart(buyer, product, 3)
    placed = (await api.checkout(buyer))["order"]
    result = await cancel(api, buyer, placed["items"][0]["id"])
    assert result["errors"] == []
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT status FROM orders")) == "CANCELLED"
        assert await conn.scalar(text("SELECT stock FROM products")) == 4
        assert await conn.scalar(text("SELECT count(*) FROM refunds")) == 0
    again = await cancel(api, buyer, placed["items"][0]["id"])
    assert [e["code"] for e in again["errors"]] == ["INVALID_STATE"]
    await assert_invariants(services.engine)


async def test_a_buyer_pages_through_their_orders_newest_first(api: Api) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=1_000, stock=10)
    placed = []
    for _ in range(3):
        await api.add_to_cart(buyer, product, 1)
        placed.append((await api.checkout(buyer))["order"]["id"])
    page = """query($after: String) { orders(first: 2, after: $after) {
        edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""

    first = (await api.gql(page, {"after": None}, buyer.token))["orders"]
    second = (await api.gql(page, {"after": first["pageInfo"]["endCursor"]}, buyer.token))["orders"]

    ids = [e["node"]["id"] for e in first["edges"] + second["edges"]]
    assert ids == placed[::-1]
    assert first["pageInfo"]["hasNextPage"] is True
    assert second["pageInfo"]["hasNextPage"] is False
    too_many = await api.raw("{ orders(first: 101) { edges { cursor } } }", token=buyer.token)
    assert too_many.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
