"""Checkout over HTTP: one order, one Razorpay order, paid only by a verified capture."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.conftest import JWT_SECRET
from tests.helpers import CHECKOUT, Api, assert_invariants, bulk_buyers

ORDER_STATUS = "query($id: ID!) { order(id: $id) { status payment { status razorpayPaymentId } } }"


async def deliver_all(razorpay: RazorpaySimulator, deliveries: list[Any]) -> list[int]:
    return [await razorpay.deliver_async(d) for d in deliveries]


async def test_buyer_pays_and_the_capture_webhook_marks_the_order_paid(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=25_000, stock=5)
    assert (await api.add_to_cart(buyer, product, 2))["errors"] == []

    result = await api.checkout(buyer, key="first-checkout-1")

    assert result["errors"] == []
    order = result["order"]
    assert order["status"] == "PENDING_PAYMENT"
    assert order["total"] == {"amount": 50_000, "currency": "INR"}
    creates = razorpay.requests_to("POST", "/v1/orders")
    assert len(creates) == 1
    assert creates[0].json["amount"] == 50_000
    assert creates[0].json["receipt"] == order["id"]
    assert order["payment"]["razorpayOrderId"] == next(iter(razorpay.orders))
    assert order["payment"]["razorpayKeyId"] == razorpay.key_id

    statuses = await deliver_all(razorpay, razorpay.pay(order["payment"]["razorpayOrderId"]))

    assert all(200 <= s < 300 for s in statuses)
    data = await api.gql(ORDER_STATUS, {"id": order["id"]}, buyer.token)
    assert data["order"]["status"] == "PAID"
    assert data["order"]["payment"]["status"] == "CAPTURED"
    stock = await api.gql("query($id: ID!) { product(id: $id) { stock } }", {"id": product})
    assert stock["product"]["stock"] == 3
    await assert_invariants(services.engine)


async def test_same_key_returns_the_same_order_and_a_different_cart_is_refused(
    api: Api, razorpay: RazorpaySimulator
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, stock=5)
    await api.add_to_cart(buyer, product, 1)
    first = await api.checkout(buyer, key="repeat-key-01")
    again = await api.checkout(buyer, key="repeat-key-01")
    assert again["errors"] == []
    assert again["order"]["id"] == first["order"]["id"]
    assert len(razorpay.requests_to("POST", "/v1/orders")) == 1

    await api.add_to_cart(buyer, product, 2)
    reused = await api.checkout(buyer, key="repeat-key-01")
    assert [e["code"] for e in reused["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]


async def test_checkout_refuses_bad_keys_and_empty_carts(api: Api, services: Services) -> None:
    buyer = await api.register("USER")
    short = await api.checkout(buyer, key="short")
    assert [(e["code"], e["field"]) for e in short["errors"]] == [
        ("INVALID_INPUT", "idempotencyKey")
    ]
    weird = await api.checkout(buyer, key="has spaces in it")
    assert [e["code"] for e in weird["errors"]] == ["INVALID_INPUT"]
    empty = await api.checkout(buyer, key="empty-cart-01")
    assert [e["code"] for e in empty["errors"]] == ["CART_EMPTY"]
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM orders")) == 0


async def test_200_buyers_racing_for_50_units_get_exactly_50_orders(
    api: Api, http: httpx.AsyncClient, services: Services, razorpay: RazorpaySimulator
) -> None:
    seller = await api.register("SELLER")
    product = await api.create_product(seller, stock=50, price=1_000)
    buyers = await bulk_buyers(services.engine, 200, jwt_secret=JWT_SECRET, product_id=product)

    responses = await asyncio.gather(
        *(api.raw(CHECKOUT, {"key": f"race-{i:04d}"}, b.token) for i, b in enumerate(buyers))
    )

    assert all(r.status_code == 200 for r in responses)
    payloads = [r.json()["data"]["checkout"] for r in responses]
    placed = [p for p in payloads if not p["errors"]]
    refused = [p["errors"][0]["code"] for p in payloads if p["errors"]]
    assert len(placed) == 50
    assert refused == ["OUT_OF_STOCK"] * 150
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT stock FROM products")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM orders")) == 50
    assert len(razorpay.requests_to("POST", "/v1/orders")) == 50
    await assert_invariants(services.engine)


async def test_50_concurrent_checkouts_with_one_key_make_one_order_and_one_razorpay_order(
    api: Api, services: Services, razorpay: RazorpaySimulator
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, stock=10)
    await api.add_to_cart(buyer, product, 3)

    responses = await asyncio.gather(
        *(api.raw(CHECKOUT, {"key": "one-key-many-tries"}, buyer.token) for _ in range(50))
    )

    payloads = [r.json()["data"]["checkout"] for r in responses]
    assert {p["order"]["id"] for p in payloads} == {payloads[0]["order"]["id"]}
    assert all(p["errors"] == [] for p in payloads)
    assert {p["order"]["payment"]["razorpayOrderId"] for p in payloads} != {None}
    assert len(razorpay.requests_to("POST", "/v1/orders")) == 1
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM orders")) == 1
        assert await conn.scalar(text("SELECT stock FROM products")) == 7
    await assert_invariants(services.engine)


async def test_an_order_total_above_the_maximum_is_refused_and_holds_no_stock(
    api: Api, services: Services, razorpay: RazorpaySimulator
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=600_000_000, stock=2)  # ₹60 lakh
    await api.add_to_cart(buyer, product, 1)
    result = await api.checkout(buyer)
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID_INPUT", "cart")]
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM orders")) == 0
        assert await conn.scalar(text("SELECT stock FROM products")) == 2
    assert razorpay.requests_to("POST", "/v1/orders") == []
