"""Item cancellation and per-item refunds: exactly once, settled only by Razorpay's webhooks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.razorpay import RazorpayGateway
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import User
from joycart.resolvers import orders, refunds
from joycart.worker import run_due_jobs
from tests.helpers import Account, Api, assert_invariants, make_jobs_due

CANCEL = """mutation($id: ID!, $q: Int, $r: String) {
  cancelItem(orderItemId: $id, quantity: $q, reason: $r) {
    orderItem { id status quantity cancelledQuantity }
    refund { id status amount { amount } gatewayRefundId quantity }
    errors { code message field } } }"""
ORDER = """query($id: ID!) { order(id: $id) { id status total { amount }
  items { id status cancelledQuantity refunds { status amount { amount } } }
  refunds { id status amount { amount } gatewayRefundId orderItem { id } } } }"""
PRICES = (10_000, 25_000, 40_000)


@dataclass
class PaidOrder:
    id: str
    buyer: Account
    sellers: list[Account]
    items: list[dict[str, Any]]
    products: list[str]
    rzp_order: str


async def paid_order(
    api: Api, razorpay: RazorpaySimulator, quantities: tuple[int, ...] = (1, 2, 1)
) -> PaidOrder:
    sellers = [await api.register("SELLER") for _ in PRICES]
    buyer = await api.register("USER")
    products = [
        await api.create_product(s, price=p, stock=10, name=f"Item {i}")
        for i, (s, p) in enumerate(zip(sellers, PRICES, strict=True))
    ]
    for product, qty in zip(products, quantities, strict=True):
        await api.add_to_cart(buyer, product, qty)
    placed = (await api.checkout(buyer))["order"]
    rzp_order = placed["payment"]["razorpayOrderId"]
    for delivery in razorpay.pay(rzp_order):
        assert await razorpay.deliver_async(delivery) == 200
    by_price = {i["unitPrice"]["amount"]: i for i in placed["items"]}
    items = [by_price[p] for p in PRICES]
    return PaidOrder(placed["id"], buyer, sellers, items, products, rzp_order)


async def cancel(
    api: Api, who: Account, item_id: str, quantity: int | None = None
) -> dict[str, Any]:
    data = await api.gql(CANCEL, {"id": item_id, "q": quantity, "r": "changed my mind"}, who.token)
    result: dict[str, Any] = data["cancelItem"]
    return result


async def stock_of(services: Services, product_id: str) -> int:
    async with services.engine.connect() as conn:
        return int(
            await conn.scalar(text("SELECT stock FROM products WHERE id = :id"), {"id": product_id})
        )


async def test_cancelling_items_refunds_each_once_and_webhooks_settle_them(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    second = order.items[1]

    result = await cancel(api, order.buyer, second["id"])

    assert result["errors"] == []
    assert result["orderItem"]["status"] == "CANCELLED"
    refund = result["refund"]
    assert refund["status"] == "INITIATED"
    assert refund["amount"]["amount"] == 2 * 25_000
    assert refund["gatewayRefundId"] in razorpay.refunds
    assert await stock_of(services, order.products[1]) == 10
    calls = razorpay.requests_to("POST", "/v1/payments/")
    assert len(calls) == 1
    assert calls[0].json["amount"] == 50_000
    assert (
        calls[0].headers["x-refund-idempotency"]
        == f"joycart-refund-{refund['id'].replace('-', '')}"
    )

    for delivery in razorpay.process_refund(refund["gatewayRefundId"]):
        assert await razorpay.deliver_async(delivery) == 200
    data = (await api.gql(ORDER, {"id": order.id}, order.buyer.token))["order"]
    assert data["status"] == "PARTIALLY_CANCELLED"
    assert [r["status"] for r in data["refunds"]] == ["REFUNDED"]

    for item, seller in ((order.items[0], order.sellers[0]), (order.items[2], order.sellers[2])):
        assert (await cancel(api, seller, item["id"]))[
            "errors"
        ] == []  # the item's seller may cancel
    data = (await api.gql(ORDER, {"id": order.id}, order.buyer.token))["order"]
    assert data["status"] == "CANCELLED"
    assert sum(r["amount"]["amount"] for r in data["refunds"]) == 10_000 + 50_000 + 40_000
    assert len(razorpay.requests_to("POST", "/v1/payments/")) == 3
    await assert_invariants(services.engine)


async def test_partial_cancel_refunds_exactly_the_units_and_rejects_more_than_remain(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay, quantities=(1, 5, 1))
    item = order.items[1]
    first = await cancel(api, order.buyer, item["id"], 2)
    assert first["refund"]["amount"]["amount"] == 50_000
    assert first["orderItem"]["status"] == "PARTIALLY_CANCELLED"
    too_many = await cancel(api, order.buyer, item["id"], 4)
    assert [(e["code"], e["field"]) for e in too_many["errors"]] == [("INVALID_INPUT", "quantity")]
    zero = await cancel(api, order.buyer, item["id"], 0)
    assert [e["code"] for e in zero["errors"]] == ["INVALID_INPUT"]
    rest = await cancel(api, order.buyer, item["id"])
    assert rest["refund"]["amount"]["amount"] == 3 * 25_000
    again = await cancel(api, order.buyer, item["id"])
    assert [e["code"] for e in again["errors"]] == ["INVALID_STATE"]
    await assert_invariants(services.engine)


async def test_twenty_concurrent_cancels_of_one_item_make_one_refund(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    item_id = order.items[1]["id"]
    results = await asyncio.gather(*(cancel(api, order.buyer, item_id) for _ in range(20)))
    assert sum(1 for r in results if not r["errors"]) == 1
    assert {r["errors"][0]["code"] for r in results if r["errors"]} == {"INVALID_STATE"}
    assert len(razorpay.requests_to("POST", "/v1/payments/")) == 1
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM refunds")) == 1
    await assert_invariants(services.engine)


async def test_concurrent_partial_cancels_never_cancel_more_units_than_the_item_has(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay, quantities=(1, 5, 1))
    item_id = order.items[1]["id"]
    results = await asyncio.gather(*(cancel(api, order.buyer, item_id, 1) for _ in range(12)))
    assert sum(1 for r in results if not r["errors"]) == 5
    async with services.engine.connect() as conn:
        assert (
            await conn.scalar(
                text("SELECT cancelled_quantity FROM order_items WHERE id = :i"), {"i": item_id}
            )
            == 5
        )
        assert await conn.scalar(text("SELECT count(*) FROM refunds")) == 5
    assert len(razorpay.requests_to("POST", "/v1/payments/")) == 5
    await assert_invariants(services.engine)


async def test_refund_api_down_the_cancel_succeeds_and_the_worker_refunds_once_later(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    razorpay.inject("POST", "/v1/payments/", "500", times=3)

    result = await cancel(api, order.buyer, order.items[0]["id"])

    assert result["errors"] == []
    assert result["refund"]["status"] == "INITIATED"
    assert result["refund"]["gatewayRefundId"] is None
    assert await stock_of(services, order.products[0]) == 10
    for _ in range(2):  # still down: retried, still INITIATED, never FAILED
        await make_jobs_due(services.engine)
        assert (await run_due_jobs(services)).jobs_retried == 1
    await make_jobs_due(services.engine)
    assert (await run_due_jobs(services)).jobs_done == 1
    assert len(razorpay.refunds) == 1
    async with services.engine.connect() as conn:
        row = (await conn.execute(text("SELECT status, gateway_refund_id FROM refunds"))).one()
    assert row.status == "INITIATED"
    assert row.gateway_refund_id == next(iter(razorpay.refunds))
    await assert_invariants(services.engine)


@pytest.mark.parametrize("fault", ["slow", "drop_after_acting"])
async def test_a_refund_created_whose_answer_was_lost_is_not_created_twice(
    fault: str,
    api: Api,
    razorpay: RazorpaySimulator,
    services: Services,
    short_timeout: Callable[[], AbstractContextManager[None]],
) -> None:
    order = await paid_order(api, razorpay)
    razorpay.inject("POST", "/v1/payments/", fault, delay=1.5)
    with short_timeout():
        result = await cancel(api, order.buyer, order.items[2]["id"])
    assert result["refund"]["gatewayRefundId"] is None
    assert len(razorpay.refunds) == 1  # Razorpay did create it

    await make_jobs_due(services.engine)
    assert (await run_due_jobs(services)).jobs_done == 1

    assert len(razorpay.refunds) == 1
    async with services.engine.connect() as conn:
        gateway_id = await conn.scalar(text("SELECT gateway_refund_id FROM refunds"))
    assert gateway_id == next(iter(razorpay.refunds))
    await assert_invariants(services.engine)


async def test_a_crash_between_commit_and_call_still_ends_with_one_refund(
    api: Api, razorpay: RazorpaySimulator, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await paid_order(api, razorpay)
    gateway = services.gateway
    assert isinstance(gateway, RazorpayGateway)
    real = gateway.create_refund
    crashes = 0

    async def crash_before_sending(**kwargs: Any) -> Any:
        nonlocal crashes
        crashes += 1
        raise RuntimeError("process killed before the request left")

    monkeypatch.setattr(gateway, "create_refund", crash_before_sending)
    async with services.sessions() as session, session.begin():
        buyer = await session.get_one(User, uuid.UUID(order.buyer.id))
        result = await orders.cancel_item(
            session, actor=buyer, order_item_id=order.items[0]["id"], quantity=None, reason=None
        )
    assert result.refund is not None
    with pytest.raises(RuntimeError):
        await refunds.submit_refund(services.sessions, gateway, result.refund.id, wait=True)
    assert crashes == 1
    assert razorpay.refunds == {}
    monkeypatch.setattr(gateway, "create_refund", real)

    await make_jobs_due(services.engine)
    assert (await run_due_jobs(services)).jobs_done == 1
    assert len(razorpay.refunds) == 1
    await assert_invariants(services.engine)


async def test_refund_webhooks_twice_out_of_order_early_and_forged_end_right(
    api: Api,
    razorpay: RazorpaySimulator,
    services: Services,
    short_timeout: Callable[[], AbstractContextManager[None]],
) -> None:
    order = await paid_order(api, razorpay)
    # The answer to our refund call is lost; Razorpay's webhook arrives before we learn the id.
    razorpay.inject("POST", "/v1/payments/", "slow", delay=1.5)
    with short_timeout():
        result = await cancel(api, order.buyer, order.items[1]["id"])
    assert result["refund"]["gatewayRefundId"] is None
    gateway_id = next(iter(razorpay.refunds))
    processed = razorpay.process_refund(gateway_id)[0]
    forged = razorpay.event(  # a failure nobody signed
        "refund.failed", processed.json()["payload"]
    )
    headers = {**forged.headers(), "X-Razorpay-Signature": "f" * 64}
    response = await api.http.post("/webhooks/razorpay", content=forged.body, headers=headers)
    assert response.status_code == 400

    assert await razorpay.deliver_async(processed) == 200
    assert await razorpay.deliver_async(processed) == 200  # twice
    stale_created = razorpay.event(
        "refund.created",
        {
            "refund": {
                "entity": {**processed.json()["payload"]["refund"]["entity"], "status": "pending"}
            }
        },
    )
    assert await razorpay.deliver_async(stale_created) == 200  # out of order: older snapshot

    data = (await api.gql(ORDER, {"id": order.id}, order.buyer.token))["order"]
    assert [(r["status"], r["gatewayRefundId"]) for r in data["refunds"]] == [
        ("REFUNDED", gateway_id)
    ]
    await make_jobs_due(services.engine)
    await run_due_jobs(services)
    assert len(razorpay.refunds) == 1
    await assert_invariants(services.engine)


async def test_refund_failed_webhook_marks_it_failed_and_refused_refunds_fail_with_the_reason(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    first = await cancel(api, order.buyer, order.items[0]["id"])
    for delivery in razorpay.fail_refund(first["refund"]["gatewayRefundId"]):
        assert await razorpay.deliver_async(delivery) == 200
    razorpay.inject("POST", "/v1/payments/", "400")
    second = await cancel(api, order.buyer, order.items[2]["id"])
    data = (await api.gql(ORDER, {"id": order.id}, order.buyer.token))["order"]
    statuses = {r["id"]: r["status"] for r in data["refunds"]}
    assert statuses[first["refund"]["id"]] == "FAILED"
    assert statuses[second["refund"]["id"]] == "FAILED"
    async with services.engine.connect() as conn:
        reason = await conn.scalar(
            text("SELECT failure_reason FROM refunds WHERE id = :id"),
            {"id": second["refund"]["id"]},
        )
    assert "The amount must be at least INR 1.00" in reason

    retried = await api.gql(
        "mutation($id: ID!) { retryRefund(refundId: $id) { refund { status amount { amount } } "
        "errors { code } } }",
        {"id": first["refund"]["id"]},
        order.sellers[0].token,
    )
    assert retried["retryRefund"]["refund"] == {"status": "INITIATED", "amount": {"amount": 10_000}}
    twice = await api.gql(
        "mutation($id: ID!) { retryRefund(refundId: $id) { errors { code } } }",
        {"id": first["refund"]["id"]},
        order.buyer.token,
    )
    assert twice["retryRefund"]["errors"] == [{"code": "INVALID_STATE"}]
    await api.gql(
        "mutation($id: ID!) { retryRefund(refundId: $id) { errors { code } } }",
        {"id": second["refund"]["id"]},
        order.buyer.token,
    )
    assert len(razorpay.refunds) == 3
    await assert_invariants(services.engine)
