"""Razorpay answers whose effect is unknown (409, 401, 404, 429, HTML, empty, odd 200) never fail a
refund: it stays INITIATED, the worker retries with the same idempotency key, and Razorpay ends
up holding exactly one refund."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
import razorpay as razorpay_sdk
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import Capture, User
from joycart.resolvers import orders, refunds
from joycart.worker import run_due_jobs
from tests.api.test_cancellation import ORDER, cancel, paid_order
from tests.helpers import Api, assert_invariants, make_jobs_due

RETRY = "mutation($id: ID!) { retryRefund(refundId: $id) { errors { code message } } }"


async def _refund_row(services: Services) -> tuple[str, str | None]:
    async with services.engine.connect() as conn:
        row = (await conn.execute(text("SELECT status, gateway_refund_id FROM refunds"))).one()
    return row.status, row.gateway_refund_id


async def _until_razorpay_holds_a_refund(razorpay: RazorpaySimulator) -> None:
    # The first request is still in flight at the fake; wait for its (scheduled) completion.
    for _ in range(200):
        if razorpay.refunds:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the in-flight refund never completed at the fake Razorpay")


async def test_a_retry_during_the_first_call_gets_409_and_the_webhook_settles_one_refund(
    api: Api,
    razorpay: RazorpaySimulator,
    services: Services,
    short_timeout: Callable[[], AbstractContextManager[None]],
) -> None:
    order = await paid_order(api, razorpay)
    # Razorpay keeps processing the first request for 3 s; our call gives up after 0.5 s.
    razorpay.inject("POST", "/v1/payments/", "slow_before_acting", delay=3.0)
    with short_timeout():
        result = await cancel(api, order.buyer, order.items[0]["id"])
    assert result["errors"] == []
    assert result["refund"]["status"] == "INITIATED"

    await make_jobs_due(services.engine)
    stats = await run_due_jobs(services)  # same key while the first is in flight: 409

    refund_posts = razorpay.requests_to("POST", "/v1/payments/")
    assert len(refund_posts) == 2
    keys = {r.headers["x-refund-idempotency"] for r in refund_posts}
    assert len(keys) == 1  # the retry reused the key
    assert stats.jobs_retried == 1
    assert await _refund_row(services) == ("INITIATED", None)  # 409 is not a refusal

    await _until_razorpay_holds_a_refund(razorpay)
    (gateway_id,) = razorpay.refunds
    for delivery in razorpay.process_refund(gateway_id):
        assert await razorpay.deliver_async(delivery) == 200

    assert await _refund_row(services) == ("REFUNDED", gateway_id)
    await make_jobs_due(services.engine)
    await run_due_jobs(services)
    assert len(razorpay.refunds) == 1
    refused = await api.gql(RETRY, {"id": result["refund"]["id"]}, order.buyer.token)
    assert [e["code"] for e in refused["retryRefund"]["errors"]] == ["INVALID_STATE"]
    assert len(razorpay.refunds) == 1
    await assert_invariants(services.engine)


@pytest.mark.parametrize(
    "fault", ["401", "403", "404", "409", "429", "html", "empty", "unexpected200", "html502"]
)
async def test_an_unknown_refund_answer_keeps_it_initiated_and_ends_in_one_refund(
    fault: str, api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    razorpay.inject("POST", "/v1/payments/", fault)

    result = await cancel(api, order.buyer, order.items[1]["id"])

    assert result["errors"] == []
    assert await _refund_row(services) == ("INITIATED", None)
    assert razorpay.refunds == {}
    await make_jobs_due(services.engine)
    assert (await run_due_jobs(services)).jobs_done == 1  # the API has recovered

    assert len(razorpay.refunds) == 1
    (gateway_id,) = razorpay.refunds
    assert await _refund_row(services) == ("INITIATED", gateway_id)
    for delivery in razorpay.process_refund(gateway_id):
        assert await razorpay.deliver_async(delivery) == 200
    data = (await api.gql(ORDER, {"id": order.id}, order.buyer.token))["order"]
    assert [r["status"] for r in data["refunds"]] == ["REFUNDED"]
    await assert_invariants(services.engine)


async def test_a_refusal_does_not_fail_a_refund_razorpay_shows_it_holds(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    async with services.sessions() as session, session.begin():  # committed; no call made yet
        buyer = await session.get_one(User, uuid.UUID(order.buyer.id))
        result = await orders.cancel_item(
            session, actor=buyer, order_item_id=order.items[0]["id"], quantity=None, reason=None
        )
        assert result.refund is not None
        refund_id, amount = result.refund.id, result.refund.amount
        payment_id = (await session.get_one(Capture, result.refund.capture_id)).gateway_payment_id
    # Razorpay holds a refund of ours (say, from a request whose answer we lost) ...
    client = razorpay_sdk.Client(auth=(razorpay.key_id, razorpay.key_secret))
    client.base_url = razorpay.base_url
    held = client.payment.refund(
        payment_id, {"amount": amount, "notes": {"joycart_refund_id": str(refund_id)}}, timeout=5
    )
    # ... and then answers our call with a definite refusal.
    razorpay.inject("POST", "/v1/payments/", "400")

    row = await refunds.submit_refund(services.sessions, services.gateway, refund_id, wait=False)

    assert (row.status.value, row.gateway_refund_id) == ("INITIATED", held["id"])
    assert len(razorpay.refunds) == 1
