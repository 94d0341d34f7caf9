"""Razorpay failing during checkout, and unpaid orders expiring: the order survives, the
payment session is finished exactly once, and stock comes back exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.worker import run_due_jobs, run_once
from tests.helpers import Api, assert_invariants, make_jobs_due


async def _buyer_with_cart(api: Api, stock: int = 5) -> tuple[object, str]:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=30_000, stock=stock)
    await api.add_to_cart(buyer, product, 1)
    return buyer, product


@pytest.mark.parametrize("fault", ["500", "html502", "slow", "drop_after_acting"])
async def test_checkout_survives_razorpay_failing_and_ends_with_one_razorpay_order(
    fault: str,
    api: Api,
    razorpay: RazorpaySimulator,
    services: Services,
    short_timeout: Callable[[], AbstractContextManager[None]],
) -> None:
    buyer, _ = await _buyer_with_cart(api)
    razorpay.inject("POST", "/v1/orders", fault, delay=1.5)

    with short_timeout():
        first = await api.checkout(buyer, key="faulty-gateway-1")  # type: ignore[arg-type]

    assert [e["code"] for e in first["errors"]] == ["PAYMENT_GATEWAY_UNAVAILABLE"]
    assert first["order"]["status"] == "PENDING_PAYMENT"
    assert first["order"]["payment"]["razorpayOrderId"] is None

    if fault in ("500", "html502"):
        retry = await api.checkout(buyer, key="faulty-gateway-1")  # type: ignore[arg-type]
        assert retry["errors"] == []
        assert retry["order"]["id"] == first["order"]["id"]
        rzp_order = retry["order"]["payment"]["razorpayOrderId"]
    else:  # the order was created at Razorpay but the answer was lost: the worker finds it
        await make_jobs_due(services.engine)
        stats = await run_due_jobs(services)
        assert stats.jobs_done == 1
        async with services.engine.connect() as conn:
            rzp_order = await conn.scalar(text("SELECT razorpay_order_id FROM payments"))
    assert list(razorpay.orders) == [rzp_order]
    assert razorpay.orders[rzp_order]["receipt"] == first["order"]["id"]
    await assert_invariants(services.engine)


async def test_two_workers_expire_an_unpaid_order_and_return_its_stock_once(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    buyer, _ = await _buyer_with_cart(api, stock=3)
    placed = await api.checkout(buyer)  # type: ignore[arg-type]
    async with services.engine.begin() as conn:
        await conn.execute(text("UPDATE orders SET expires_at = now() - interval '1 minute'"))

    results = await asyncio.gather(run_once(services), run_once(services))

    assert sorted(r.orders_expired for r in results) == [0, 1]
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT status FROM orders")) == "EXPIRED"
        assert await conn.scalar(text("SELECT stock FROM products")) == 3
        movements = await conn.scalar(
            text("SELECT count(*) FROM stock_ledger WHERE reason = 'EXPIRY'")
        )
        assert movements == 1
    await assert_invariants(services.engine)

    # A capture that arrives after expiry is refunded in full, automatically.
    rzp_order = placed["order"]["payment"]["razorpayOrderId"]
    for delivery in razorpay.pay(rzp_order):
        assert await razorpay.deliver_async(delivery) == 200
    await make_jobs_due(services.engine)
    await run_due_jobs(services)
    refunds = razorpay.requests_to("POST", "/v1/payments/")
    assert len(refunds) == 1
    assert refunds[0].json["amount"] == 30_000
    assert refunds[0].headers["x-refund-idempotency"].startswith("joycart-refund-")
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT status FROM orders")) == "EXPIRED"
        row = (
            await conn.execute(text("SELECT status, reason, gateway_refund_id FROM refunds"))
        ).one()
    assert row.status == "INITIATED"
    assert row.reason == "UNOWED_CAPTURE"
    assert row.gateway_refund_id in razorpay.refunds
    await assert_invariants(services.engine)
