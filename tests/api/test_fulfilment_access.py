"""Who may see and act on addresses, shipments and returns: the owner (and for shipments and
returns, the item's seller); another buyer, another seller and anonymous callers see nothing and
change nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.api.fulfilment_steps import (
    ADDRESS,
    ADDRESSES,
    APPROVE_RETURN,
    CHECKOUT_TO,
    DELETE_ADDRESS,
    DELIVER,
    ORDER_FULFILMENT,
    RECEIVE_RETURN,
    REJECT_RETURN,
    REQUEST_RETURN,
    SET_ADDRESS,
    SHIP,
    UPDATE_ADDRESS,
    add_address,
    addressed_paid_order,
    delivered,
    order_view,
    request_return,
    ship,
)
from tests.helpers import Account, Api, assert_invariants

TABLES = (
    "addresses",
    "order_addresses",
    "shipments",
    "shipment_lines",
    "returns",
    "refunds",
    "stock_ledger",
    "order_events",
)


async def _snapshot(services: Services) -> dict[str, list[Any]]:
    async with services.engine.connect() as conn:
        return {
            table: list((await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))).all())  # noqa: S608
            for table in (*TABLES, "order_items")
        }


def _codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_nobody_but_the_buyer_sees_or_changes_their_address_book(
    api: Api, services: Services
) -> None:
    buyer = await api.register("USER")
    other_buyer = await api.register("USER")
    seller = await api.register("SELLER")
    mine = (await add_address(api, buyer))["address"]
    product = await api.create_product(seller, price=10_000, stock=5)
    await api.add_to_cart(other_buyer, product, 1)
    theirs = await api.gql(
        CHECKOUT_TO, {"key": "other-buyer-key-1", "address": None}, other_buyer.token
    )
    their_order = theirs["checkout"]["order"]["id"]
    before = await _snapshot(services)

    assert (await api.gql(ADDRESSES, token=other_buyer.token))["addresses"] == []
    assert (await api.gql(ADDRESSES, token=seller.token))["addresses"] == []
    change = {"id": mine["id"], "input": {"city": "Elsewhere"}}
    assert _codes((await api.gql(UPDATE_ADDRESS, change, other_buyer.token))["updateAddress"]) == [
        "NOT_FOUND"
    ]
    deleting = await api.gql(DELETE_ADDRESS, {"id": mine["id"]}, other_buyer.token)
    assert _codes(deleting["deleteAddress"]) == ["NOT_FOUND"]
    # Another buyer cannot ship their order to my address, at checkout or later.
    await api.add_to_cart(other_buyer, product, 1)
    stolen = await api.gql(
        CHECKOUT_TO, {"key": "other-buyer-key-2", "address": mine["id"]}, other_buyer.token
    )
    assert [(e["code"], e["field"]) for e in stolen["checkout"]["errors"]] == [
        ("NOT_FOUND", "shippingAddressId")
    ]
    moved = await api.gql(SET_ADDRESS, {"o": their_order, "a": mine["id"]}, other_buyer.token)
    assert _codes(moved["setOrderShippingAddress"]) == ["NOT_FOUND"]
    # And I cannot choose the address of another buyer's order.
    mine_on_theirs = await api.gql(SET_ADDRESS, {"o": their_order, "a": mine["id"]}, buyer.token)
    assert _codes(mine_on_theirs["setOrderShippingAddress"]) == ["NOT_FOUND"]
    for who in (seller,):  # sellers have no address book
        added = await api.gql(
            "mutation($i: AddressInput!) { addAddress(input: $i) { errors { code } } }",
            {"i": ADDRESS},
            who.token,
        )
        assert _codes(added["addAddress"]) == ["FORBIDDEN"]
    anonymous = await api.raw(ADDRESSES)
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for mutation, variables in (
        (UPDATE_ADDRESS, change),
        (DELETE_ADDRESS, {"id": mine["id"]}),
        (SET_ADDRESS, {"o": their_order, "a": mine["id"]}),
    ):
        payload = next(iter((await api.gql(mutation, variables)).values()))
        assert _codes(payload) == ["UNAUTHENTICATED"]

    after = await _snapshot(services)
    assert after["addresses"] == before["addresses"]
    assert after["order_addresses"] == before["order_addresses"]
    await assert_invariants(services.engine)


async def test_strangers_cannot_see_or_act_on_shipments_and_returns(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(2, 2, 1))
    shipment_id = await delivered(api, order, 0, 1)  # seller 0 delivered one unit of item 0
    pending = await ship(api, order.sellers[1], [(order.items[1]["id"], 2)])
    returned = await request_return(api, order.buyer, order.items[0]["id"], 1)
    return_id = returned["return"]["id"]
    other_buyer = await api.register("USER")
    other_seller = await api.register("SELLER")
    before = await _snapshot(services)

    strangers: list[Account | None] = [other_buyer, other_seller, None]
    for who in strangers:
        token = who.token if who else None
        seen = await api.gql(ORDER_FULFILMENT, {"id": order.id}, token)
        assert seen["order"] is None
        attempts = [
            (
                SHIP,
                {
                    "items": [{"orderItemId": order.items[0]["id"], "quantity": 1}],
                    "carrier": "X",
                    "tracking": "T1",
                },
            ),
            (DELIVER, {"id": pending["shipment"]["id"]}),
            (REQUEST_RETURN, {"id": order.items[0]["id"], "q": 1, "r": "mine now"}),
            (APPROVE_RETURN, {"id": return_id}),
            (REJECT_RETURN, {"id": return_id, "r": "no"}),
            (RECEIVE_RETURN, {"id": return_id, "restock": True}),
        ]
        for mutation, variables in attempts:
            payload = next(iter((await api.gql(mutation, variables, token)).values()))
            expected = "NOT_FOUND" if who else "UNAUTHENTICATED"
            assert _codes(payload) == [expected], (mutation, payload)

    # The parties themselves cannot take each other's part either.
    buyer_ships = await ship(api, order.buyer, [(order.items[2]["id"], 1)])
    assert _codes(buyer_ships) == ["NOT_FOUND"]
    buyer_approves = await api.gql(APPROVE_RETURN, {"id": return_id}, order.buyer.token)
    assert _codes(buyer_approves["approveReturn"]) == ["NOT_FOUND"]
    seller_asks = await request_return(api, order.sellers[0], order.items[0]["id"], 1)
    assert _codes(seller_asks) == ["NOT_FOUND"]
    wrong_seller = await api.gql(DELIVER, {"id": shipment_id}, order.sellers[1].token)
    assert _codes(wrong_seller["markShipmentDelivered"]) == ["NOT_FOUND"]
    other_sellers_item = await ship(api, order.sellers[1], [(order.items[2]["id"], 1)])
    assert _codes(other_sellers_item) == ["NOT_FOUND"]
    approve_other = await api.gql(APPROVE_RETURN, {"id": return_id}, order.sellers[1].token)
    assert _codes(approve_other["approveReturn"]) == ["NOT_FOUND"]

    assert await _snapshot(services) == before
    await assert_invariants(services.engine)


async def test_a_seller_sees_only_the_shipments_and_returns_of_their_own_items(
    api: Api, razorpay: RazorpaySimulator
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(2, 2, 1))
    for index in (0, 1):
        await delivered(api, order, index, 2)
        asked = await request_return(api, order.buyer, order.items[index]["id"], 1)
        assert asked["errors"] == []

    whole = await order_view(api, order.buyer, order.id)
    assert whole is not None
    assert len(whole["shipments"]) == 2
    assert len(whole["returns"]) == 2
    assert whole["shippingAddress"]["city"] == "Bengaluru"
    for index, seller in enumerate(order.sellers):
        part = await order_view(api, seller, order.id)
        assert part is not None
        own = order.items[index]["id"]
        assert {i["orderItem"]["id"] for s in part["shipments"] for i in s["items"]} <= {own}
        assert [r["orderItem"]["id"] for r in part["returns"]] == ([own] if index < 2 else [])
        assert len(part["shipments"]) == (1 if index < 2 else 0)
        # Through the item, too: another seller's item shows this seller no returns.
        for item in part["items"]:
            expected = 1 if item["id"] == own and index < 2 else 0
            assert len(item["returns"]) == expected, (index, item)
