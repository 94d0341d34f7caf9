"""The address book: Indian validation (nothing written on bad input), one default, a cap; and
the copy an order ships to: chosen at checkout or later, immutable, fixed at the first shipment."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers.addresses import MAX_ADDRESSES, indian_mobile
from tests.api.fulfilment_steps import (
    ADDRESSES,
    CHECKOUT_TO,
    DELETE_ADDRESS,
    ORDER_FULFILMENT,
    SET_ADDRESS,
    UPDATE_ADDRESS,
    add_address,
    addressed_paid_order,
    ship,
)
from tests.api.test_cancellation import paid_order
from tests.helpers import Account, Api, assert_invariants


async def _rows(services: Services, table: str) -> list[Any]:
    async with services.engine.connect() as conn:
        return list((await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))).all())  # noqa: S608


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pinCode", "056001"),  # starts with 0
        ("pinCode", "56001"),
        ("pinCode", "5600011"),
        ("pinCode", "56OO01"),
        ("phone", "12345"),
        ("phone", "+1 202 555 0123"),
        ("phone", "5876543210"),  # mobile numbers start with 6-9
        ("phone", "+91 98765 4321"),  # nine digits
        ("phone", "+92 98765 43210"),
        ("state", "XX"),
        ("state", "California"),
        ("state", ""),
        ("name", "   "),
        ("line1", "x" * 201),
        ("city", ""),
    ],
)
async def test_a_bad_field_is_invalid_input_naming_it_and_nothing_is_written(
    field: str, value: str, api: Api, services: Services
) -> None:
    buyer = await api.register("USER")
    result = await add_address(api, buyer, **{field: value})
    assert result["address"] is None
    [error] = result["errors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", field)
    assert await _rows(services, "addresses") == []

    kept = await add_address(api, buyer)
    before = await _rows(services, "addresses")
    changed = await api.gql(
        UPDATE_ADDRESS, {"id": kept["address"]["id"], "input": {field: value}}, buyer.token
    )
    assert [(e["code"], e["field"]) for e in changed["updateAddress"]["errors"]] == [
        ("INVALID_INPUT", field)
    ]
    assert await _rows(services, "addresses") == before


@pytest.mark.parametrize(
    "typed",
    [
        "9876543210",
        "98765 43210",
        "+91 98765 43210",
        "+91-9876543210",
        "09876543210",
        "919876543210",
        "(+91) 98765-43210",
        "0091 98765 43210",
    ],
)
def test_common_ways_of_writing_a_mobile_number_become_e164(typed: str) -> None:
    assert indian_mobile(typed) == "+919876543210"


async def test_states_by_code_old_code_or_name_and_pin_with_a_space(api: Api) -> None:
    buyer = await api.register("USER")
    for given, code in (
        ("ka", "KA"),
        ("IN-MH", "MH"),
        ("OR", "OD"),
        ("Tamil  Nadu", "TN"),
        ("delhi", "DL"),
        ("Ladakh", "LA"),
    ):
        result = await add_address(api, buyer, state=given, pinCode="110 001")
        assert result["errors"] == []
        assert (result["address"]["state"], result["address"]["pinCode"]) == (code, "110001")
    states = (await api.gql("{ indianStates { code name unionTerritory } }"))["indianStates"]
    assert len(states) == 36
    assert sum(1 for s in states if s["unionTerritory"]) == 8


async def test_one_default_the_first_becomes_it_and_it_moves(api: Api) -> None:
    buyer = await api.register("USER")
    first = (await add_address(api, buyer))["address"]
    second = (await add_address(api, buyer, city="Mysuru"))["address"]
    assert (first["isDefault"], second["isDefault"]) == (True, False)
    third = (await add_address(api, buyer, city="Hubballi", isDefault=True))["address"]
    listed = (await api.gql(ADDRESSES, token=buyer.token))["addresses"]
    assert [(a["id"], a["isDefault"]) for a in listed] == [
        (third["id"], True),
        (second["id"], False),
        (first["id"], False),
    ]
    moved = await api.gql(
        UPDATE_ADDRESS, {"id": first["id"], "input": {"isDefault": True}}, buyer.token
    )
    assert moved["updateAddress"]["address"]["isDefault"] is True
    listed = (await api.gql(ADDRESSES, token=buyer.token))["addresses"]
    assert [a["id"] for a in listed if a["isDefault"]] == [first["id"]]
    deleted = await api.gql(DELETE_ADDRESS, {"id": first["id"]}, buyer.token)
    assert deleted["deleteAddress"] == {"deletedId": first["id"], "errors": []}
    listed = (await api.gql(ADDRESSES, token=buyer.token))["addresses"]
    assert [a["isDefault"] for a in listed] == [False, False]


async def test_the_address_book_is_capped(api: Api, services: Services) -> None:
    buyer = await api.register("USER")
    for _ in range(MAX_ADDRESSES):
        assert (await add_address(api, buyer))["errors"] == []
    over = await add_address(api, buyer)
    assert [e["code"] for e in over["errors"]] == ["INVALID_INPUT"]
    assert len(await _rows(services, "addresses")) == MAX_ADDRESSES


async def _checkout(
    api: Api, buyer: Account, product: str, key: str, address: str | None
) -> dict[str, Any]:
    await api.add_to_cart(buyer, product, 1)
    data = await api.gql(CHECKOUT_TO, {"key": key, "address": address}, buyer.token)
    result: dict[str, Any] = data["checkout"]
    return result


async def test_checkout_copies_the_chosen_or_default_address_and_later_edits_do_not_move_it(
    api: Api, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=10_000, stock=50)

    bare = await _checkout(api, buyer, product, "no-address-yet-1", None)
    assert bare["errors"] == []
    assert bare["order"]["shippingAddress"] is None  # valid without an address
    home = (await add_address(api, buyer))["address"]
    office = (
        await add_address(
            api, buyer, line1="Tech Park, Tower B", city="Pune", state="MH", pinCode="411057"
        )
    )["address"]

    by_default = await _checkout(api, buyer, product, "default-address-1", None)
    assert by_default["order"]["shippingAddress"]["city"] == "Bengaluru"
    chosen = await _checkout(api, buyer, product, "chosen-address-1", office["id"])
    assert chosen["order"]["shippingAddress"]["city"] == "Pune"

    await api.gql(UPDATE_ADDRESS, {"id": office["id"], "input": {"city": "Mumbai"}}, buyer.token)
    await api.gql(DELETE_ADDRESS, {"id": home["id"]}, buyer.token)
    for placed, city in ((chosen, "Pune"), (by_default, "Bengaluru")):
        seen = (await api.gql(ORDER_FULFILMENT, {"id": placed["order"]["id"]}, buyer.token))[
            "order"
        ]
        assert seen["shippingAddress"]["city"] == city

    # The same key again: the same order whether or not the address is repeated ...
    again = await api.gql(CHECKOUT_TO, {"key": "chosen-address-1", "address": None}, buyer.token)
    assert again["checkout"]["order"]["id"] == chosen["order"]["id"]
    same = await api.gql(
        CHECKOUT_TO, {"key": "chosen-address-1", "address": office["id"]}, buyer.token
    )
    assert same["checkout"]["order"]["id"] == chosen["order"]["id"]
    # ... but naming another address is another request.
    other = (await add_address(api, buyer, city="Chennai", state="TN", pinCode="600001"))["address"]
    orders_before = await _rows(services, "orders")
    reused = await api.gql(
        CHECKOUT_TO, {"key": "chosen-address-1", "address": other["id"]}, buyer.token
    )
    assert [(e["code"], e["field"]) for e in reused["checkout"]["errors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", "shippingAddressId")
    ]
    assert await _rows(services, "orders") == orders_before
    await assert_invariants(services.engine)


async def test_the_order_address_can_change_until_the_first_shipment(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay)
    moved = (await add_address(api, order.buyer, city="Kochi", state="KL", pinCode="682001"))[
        "address"
    ]
    changed = await api.gql(SET_ADDRESS, {"o": order.id, "a": moved["id"]}, order.buyer.token)
    assert changed["setOrderShippingAddress"]["errors"] == []
    assert changed["setOrderShippingAddress"]["order"]["shippingAddress"]["city"] == "Kochi"

    assert (await ship(api, order.sellers[0], [(order.items[0]["id"], 1)]))["errors"] == []
    back = (await add_address(api, order.buyer))["address"]
    late = await api.gql(SET_ADDRESS, {"o": order.id, "a": back["id"]}, order.buyer.token)
    [error] = late["setOrderShippingAddress"]["errors"]
    assert error["code"] == "INVALID_STATE"
    seen = (await api.gql(ORDER_FULFILMENT, {"id": order.id}, order.buyer.token))["order"]
    assert seen["shippingAddress"]["city"] == "Kochi"
    await assert_invariants(services.engine)


async def test_a_shipment_needs_an_address_on_the_order(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)  # paid, but no address chosen
    refused = await ship(api, order.sellers[0], [(order.items[0]["id"], 1)])
    [error] = refused["errors"]
    assert error["code"] == "INVALID_STATE"
    assert "setOrderShippingAddress" in error["message"]
    assert await _rows(services, "shipments") == []
