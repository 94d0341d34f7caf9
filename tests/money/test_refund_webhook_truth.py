"""Razorpay's refund.processed outranks a FAILED we concluded ourselves, and retryRefund never asks
again for units Razorpay is still refunding.

The FAILED rows here are set with SQL as the previous version left them after a 409 (status FAILED,
no Razorpay id) while Razorpay did make the refund; that state cannot be reached any more, which is
the point, but rows like it exist in production data.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.db import transaction
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import Capture, Order, Refund
from joycart.resolvers import refunds
from joycart.resolvers.refund_conflicts import CONFLICT_KIND, SUPERSEDED
from joycart.worker import run_due_jobs
from tests.api.test_cancellation import cancel, paid_order
from tests.helpers import Api, assert_invariants, make_jobs_due

RETRY = "mutation($id: ID!) { retryRefund(refundId: $id) { errors { code message } } }"


async def _refund_razorpay_made_but_we_failed(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> tuple[str, str, str]:
    """(buyer's token, our refund id, Razorpay's refund id) for a refund the old code FAILED."""
    order = await paid_order(api, razorpay)
    result = await cancel(api, order.buyer, order.items[0]["id"])
    refund_id, gateway_id = result["refund"]["id"], result["refund"]["gatewayRefundId"]
    assert gateway_id in razorpay.refunds
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE refunds SET status = 'FAILED', gateway_refund_id = NULL, "
                "failure_reason = 'Razorpay refused the refund: in progress' WHERE id = :id"
            ),
            {"id": refund_id},
        )
    return order.buyer.token, refund_id, gateway_id


async def _retry_made_by_the_old_code(services: Services, refund_id: str) -> uuid.UUID:
    async with transaction(services.sessions) as session:
        failed = await session.get_one(Refund, uuid.UUID(refund_id))
        order = await session.get_one(Order, failed.order_id)
        capture = await session.get_one(Capture, failed.capture_id)
        retry = refunds.create_refund(
            session, order=order, capture=capture, amount=failed.amount, reason=failed.reason,
            order_item_id=failed.order_item_id, quantity=failed.quantity,
        )  # fmt: skip
        retry.retry_of_id = failed.id
        await refunds.owe_refund_call(session, retry)
        return retry.id


async def _statuses(services: Services) -> dict[str, tuple[str, str | None]]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, status, failure_reason FROM refunds"))
        return {str(r.id): (r.status, r.failure_reason) for r in rows}


async def _conflicts(services: Services) -> list[dict[str, object]]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT detail FROM order_events WHERE kind = :k"), {"k": CONFLICT_KIND}
        )
        return [dict(r.detail) for r in rows]


async def test_processed_webhook_settles_a_locally_failed_refund_with_no_retry(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    _, refund_id, gateway_id = await _refund_razorpay_made_but_we_failed(api, razorpay, services)

    for delivery in razorpay.process_refund(gateway_id):
        assert await razorpay.deliver_async(delivery) == 200

    assert (await _statuses(services))[refund_id][0] == "REFUNDED"
    assert await _conflicts(services) == []
    await assert_invariants(services.engine)


async def test_processed_webhook_cancels_a_retry_that_was_not_sent_and_records_the_conflict(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    _, refund_id, gateway_id = await _refund_razorpay_made_but_we_failed(api, razorpay, services)
    retry_id = await _retry_made_by_the_old_code(services, refund_id)

    for delivery in razorpay.process_refund(gateway_id):
        assert await razorpay.deliver_async(delivery) == 200
    await make_jobs_due(services.engine)
    await run_due_jobs(services)

    statuses = await _statuses(services)
    assert statuses[refund_id][0] == "REFUNDED"
    assert statuses[str(retry_id)] == ("FAILED", SUPERSEDED)
    assert len(razorpay.requests_to("POST", "/v1/payments/")) == 1  # the retry never went out
    assert len(razorpay.refunds) == 1
    (conflict,) = await _conflicts(services)
    assert conflict["retry_refund_id"] == str(retry_id)
    assert conflict["resolution"] == "retry cancelled before it was sent"


async def test_processed_webhook_with_a_retry_already_sent_records_the_double_refund(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    _, refund_id, gateway_id = await _refund_razorpay_made_but_we_failed(api, razorpay, services)
    retry_id = await _retry_made_by_the_old_code(services, refund_id)
    await make_jobs_due(services.engine)
    assert (await run_due_jobs(services)).jobs_done == 1  # the retry reached Razorpay

    for delivery in razorpay.process_refund(gateway_id):
        assert await razorpay.deliver_async(delivery) == 200

    statuses = await _statuses(services)
    assert statuses[refund_id][0] == "REFUNDED"
    assert statuses[str(retry_id)][0] == "INITIATED"  # Razorpay has it; its webhook settles it
    assert len(razorpay.refunds) == 2
    (conflict,) = await _conflicts(services)
    assert conflict["retry_refund_id"] == str(retry_id)
    assert str(conflict["retry_gateway_refund_id"]).startswith("rfnd_")
    assert str(conflict["resolution"]).startswith("retry already sent")


async def test_retry_refund_is_refused_while_razorpay_holds_a_live_refund_of_those_units(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    buyer_token, refund_id, gateway_id = await _refund_razorpay_made_but_we_failed(
        api, razorpay, services
    )
    razorpay.inject("GET", "/v1/payments/", "500")  # the look-up's answer is unknown
    down = await api.gql(RETRY, {"id": refund_id}, buyer_token)
    assert [e["code"] for e in down["retryRefund"]["errors"]] == ["PAYMENT_GATEWAY_UNAVAILABLE"]

    refused = await api.gql(RETRY, {"id": refund_id}, buyer_token)
    (error,) = refused["retryRefund"]["errors"]
    assert error["code"] == "INVALID_STATE"
    assert gateway_id in error["message"]
    assert len(await _statuses(services)) == 1  # no retry row either time
    assert len(razorpay.refunds) == 1
