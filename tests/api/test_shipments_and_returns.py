"""The rules of shipments, of cancelling once things have shipped, and of returns."""

from __future__ import annotations

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.api.fulfilment_steps import (
    REJECT_RETURN,
    SET_ADDRESS,
    add_address,
    addressed_paid_order,
    approve_return,
    deliver,
    order_view,
    receive_return,
    request_return,
    ship,
)
from tests.api.test_cancellation import cancel
from tests.helpers import Api, assert_invariants


async def test_one_shipment_holds_several_items_of_one_sellers_order_with_an_event_each(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    tea = await api.create_product(seller, price=10_000, stock=5, name="Tea")
    cups = await api.create_product(seller, price=20_000, stock=5, name="Cups")
    address = (await add_address(api, buyer))["address"]
    await api.add_to_cart(buyer, tea, 2)
    await api.add_to_cart(buyer, cups, 1)
    placed = (await api.checkout(buyer))["order"]
    items = {i["unitPrice"]["amount"]: i["id"] for i in placed["items"]}

    unpaid = await ship(api, seller, [(items[10_000], 1)])
    assert [e["code"] for e in unpaid["errors"]] == ["INVALID_STATE"]
    assert address["isDefault"]  # the default address went onto the order at checkout
    for delivery in razorpay.pay(placed["payment"]["razorpayOrderId"]):
        assert await razorpay.deliver_async(delivery) == 200

    both = await ship(api, seller, [(items[10_000], 2), (items[20_000], 1)])
    assert both["errors"] == []
    assert sorted(i["quantity"] for i in both["shipment"]["items"]) == [1, 2]
    assert {i["orderItem"]["status"] for i in both["shipment"]["items"]} == {"SHIPPED"}
    again = await deliver(api, seller, both["shipment"]["id"])
    assert again["shipment"]["status"] == "DELIVERED"
    twice = await deliver(api, seller, both["shipment"]["id"])
    assert [e["code"] for e in twice["errors"]] == ["INVALID_STATE"]
    async with services.engine.connect() as conn:
        per_item = (
            await conn.execute(
                text(
                    "SELECT kind, count(DISTINCT order_item_id) FROM order_events "
                    "WHERE subject = 'SHIPMENT' GROUP BY kind ORDER BY kind"
                )
            )
        ).all()
    assert [tuple(r) for r in per_item] == [("SHIPMENT_CREATED", 2), ("SHIPMENT_DELIVERED", 2)]
    seen = await order_view(api, buyer, placed["id"])
    assert seen is not None
    assert seen["status"] == "DELIVERED"
    await assert_invariants(services.engine)


async def test_shipment_input_is_checked_before_anything_is_written(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(1, 3, 1))
    other = await addressed_paid_order(api, razorpay, quantities=(1, 1, 1))
    seller, item = order.sellers[1], order.items[1]["id"]
    cases = [
        ([], "INVALID_INPUT", "items"),
        ([(item, 0)], "INVALID_INPUT", "items[0].quantity"),
        ([(item, 1), (item, 1)], "INVALID_INPUT", "items[1].orderItemId"),
        ([(item, 4)], "INVALID_STATE", "items[0].quantity"),
        ([("not-an-id", 1)], "NOT_FOUND", "items[0].orderItemId"),
    ]
    for lines, code, field in cases:
        refused = await ship(api, seller, lines)
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [(code, field)], lines
    theirs = await ship(api, seller, [(item, 1), (other.items[1]["id"], 1)])  # not their item
    assert [(e["code"], e["field"]) for e in theirs["errors"]] == [
        ("NOT_FOUND", "items[1].orderItemId")
    ]
    blank = await api.gql(
        """mutation($items: [ShipmentItemInput!]!) { createShipment(items: $items,
             carrier: " ", trackingNumber: "T") { errors { code field } } }""",
        {"items": [{"orderItemId": item, "quantity": 1}]},
        seller.token,
    )
    assert blank["createShipment"]["errors"] == [{"code": "INVALID_INPUT", "field": "carrier"}]
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM shipments")) == 0
        assert await conn.scalar(text("SELECT sum(shipped_quantity) FROM order_items")) == 0


async def test_a_shipment_holds_items_of_one_order_only(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=10_000, stock=5)
    await add_address(api, buyer)
    item_ids = []
    for _ in range(2):
        await api.add_to_cart(buyer, product, 1)
        placed = (await api.checkout(buyer))["order"]
        for delivery in razorpay.pay(placed["payment"]["razorpayOrderId"]):
            assert await razorpay.deliver_async(delivery) == 200
        item_ids.append(placed["items"][0]["id"])
    refused = await ship(api, seller, [(item_ids[0], 1), (item_ids[1], 1)])
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("INVALID_INPUT", "items")]
    await assert_invariants(services.engine)


async def test_cancel_takes_only_unshipped_units_and_points_shipped_ones_to_returns(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(1, 4, 1))
    item = order.items[1]["id"]
    assert (await ship(api, order.sellers[1], [(item, 3)]))["errors"] == []

    too_many = await cancel(api, order.buyer, item, 2)
    [error] = too_many["errors"]
    assert (error["code"], error["field"]) == ("INVALID_STATE", "quantity")
    assert "requestReturn" in error["message"]
    rest = await cancel(api, order.buyer, item)  # no quantity: the units not yet shipped
    assert rest["errors"] == []
    assert rest["orderItem"]["cancelledQuantity"] == 1
    assert rest["orderItem"]["status"] == "SHIPPED"
    assert rest["refund"]["amount"]["amount"] == 25_000
    nothing_left = await cancel(api, order.sellers[1], item)
    [error] = nothing_left["errors"]
    assert error["code"] == "INVALID_STATE"
    assert "requestReturn" in error["message"]
    # The order: item 1 fully shipped, items 0 and 2 not yet: partially shipped.
    seen = await order_view(api, order.buyer, order.id)
    assert seen is not None
    assert seen["status"] == "PARTIALLY_SHIPPED"
    await assert_invariants(services.engine)


async def test_returns_need_delivered_units_and_a_rejected_one_leaves_them_delivered(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(1, 3, 1))
    seller, item = order.sellers[1], order.items[1]["id"]
    shipment = await ship(api, seller, [(item, 3)])
    early = await request_return(api, order.buyer, item, 1)
    assert [e["code"] for e in early["errors"]] == ["INVALID_STATE"]  # shipped, not delivered
    await deliver(api, seller, shipment["shipment"]["id"])

    too_many = await request_return(api, order.buyer, item, 4)
    assert [(e["code"], e["field"]) for e in too_many["errors"]] == [("INVALID_INPUT", "quantity")]
    no_reason = await request_return(api, order.buyer, item, 1, reason=" ")
    assert [(e["code"], e["field"]) for e in no_reason["errors"]] == [("INVALID_INPUT", "reason")]

    asked = await request_return(api, order.buyer, item, 2)
    return_id = asked["return"]["id"]
    unapproved = await receive_return(api, seller, return_id)
    assert [e["code"] for e in unapproved["errors"]] == ["INVALID_STATE"]
    more = await request_return(api, order.buyer, item, 2)  # only 1 unit left to ask for
    assert [(e["code"], e["field"]) for e in more["errors"]] == [("INVALID_INPUT", "quantity")]

    rejected = await api.gql(REJECT_RETURN, {"id": return_id, "r": "seal broken"}, seller.token)
    payload = rejected["rejectReturn"]
    assert payload["errors"] == []
    assert (payload["return"]["status"], payload["return"]["rejectionReason"]) == (
        "REJECTED",
        "seal broken",
    )
    assert payload["return"]["orderItem"]["status"] == "DELIVERED"
    assert (await approve_return(api, seller, return_id))["errors"][0]["code"] == "INVALID_STATE"

    retry = await request_return(api, order.buyer, item, 3)  # the rejected units may be asked again
    assert retry["errors"] == []
    assert (await approve_return(api, seller, retry["return"]["id"]))["errors"] == []
    kept = await receive_return(api, seller, retry["return"]["id"], restock=False)
    assert kept["return"]["restocked"] is False
    assert kept["refund"]["amount"]["amount"] == 3 * 25_000
    async with services.engine.connect() as conn:
        assert (
            await conn.scalar(text("SELECT count(*) FROM stock_ledger WHERE reason = 'RETURN'"))
            == 0
        )
    seen = await order_view(api, order.buyer, order.id)
    assert seen is not None
    assert next(i for i in seen["items"] if i["id"] == item)["status"] == "RETURNED"
    await assert_invariants(services.engine)


async def test_a_cancelled_order_neither_changes_its_address_nor_ships(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(1, 1, 1))
    for index in range(3):
        assert (await cancel(api, order.buyer, order.items[index]["id"]))["errors"] == []
    address = (await add_address(api, order.buyer, city="Goa", state="GA", pinCode="403001"))[
        "address"
    ]
    moved = await api.gql(SET_ADDRESS, {"o": order.id, "a": address["id"]}, order.buyer.token)
    assert [e["code"] for e in moved["setOrderShippingAddress"]["errors"]] == ["INVALID_STATE"]
    refused = await ship(api, order.sellers[0], [(order.items[0]["id"], 1)])
    assert [e["code"] for e in refused["errors"]] == ["INVALID_STATE"]
    await assert_invariants(services.engine)
