"""A failure after the commit never reports the committed change as failed.

cancelItem, retryRefund and receiveReturn commit, then ask Razorpay for the refund they owe. When
that follow-up fails (Razorpay down, or the follow-up write hitting a lock timeout), the answer is
the committed state with no error, and the worker makes the call exactly once later."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.worker import run_due_jobs
from tests.api.fulfilment_steps import (
    addressed_paid_order,
    approve_return,
    delivered,
    receive_return,
    request_return,
)
from tests.api.test_cancellation import ORDER, cancel, paid_order
from tests.helpers import Api, assert_invariants, make_jobs_due


@asynccontextmanager
async def follow_up_write_times_out(
    engine: AsyncEngine, table: str = "refunds", status: str = "INITIATED"
) -> AsyncIterator[None]:
    """The refund's post-commit write fails as a lock timeout does (SQLSTATE 55P03), in the real
    database: a trigger refuses the one update the Razorpay call makes first (attempts + 1 on an
    INITIATED refund). The committing transactions never make that update."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION refuse_refund_attempt() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN IF OLD.status::text = '{status}'"
                " AND NEW.gateway_attempts > OLD.gateway_attempts THEN"
                " RAISE EXCEPTION 'lock timeout (test)' USING ERRCODE = '55P03'; END IF;"
                " RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER refuse_refund_attempt BEFORE UPDATE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION refuse_refund_attempt()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER refuse_refund_attempt ON {table}"))
            await conn.execute(text("DROP FUNCTION refuse_refund_attempt()"))


def razorpay_down(razorpay: RazorpaySimulator) -> None:
    razorpay.inject("POST", "/v1/payments/", "500", times=20)


async def refunds_at_razorpay_after_worker(services: Services, razorpay: RazorpaySimulator) -> int:
    razorpay.clear_faults()
    await make_jobs_due(services.engine)
    await run_due_jobs(services)
    return len(razorpay.refunds)


async def test_cancel_answers_committed_item_and_refund_when_razorpay_is_down(
    api: Api,
    razorpay: RazorpaySimulator,
    services: Services,
    short_timeout: Callable[[], AbstractContextManager[None]],
) -> None:
    order = await paid_order(api, razorpay, (1, 3, 1))
    razorpay_down(razorpay)
    with short_timeout():
        answer = await cancel(api, order.buyer, order.items[1]["id"], quantity=2)
    assert answer["errors"] == []
    assert answer["orderItem"]["cancelledQuantity"] == 2
    assert answer["refund"]["status"] == "INITIATED"
    assert answer["refund"]["quantity"] == 2
    assert answer["refund"]["gatewayRefundId"] is None
    assert await refunds_at_razorpay_after_worker(services, razorpay) == 1
    await assert_invariants(services.engine)


async def test_cancel_answers_committed_item_and_refund_when_the_follow_up_write_times_out(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay, (1, 3, 1))
    async with follow_up_write_times_out(services.engine):
        answer = await cancel(api, order.buyer, order.items[1]["id"], quantity=2)
    # Before: CONFLICT "try again" for a committed cancel; a retry cancelled two more units.
    assert answer["errors"] == []
    assert answer["orderItem"]["cancelledQuantity"] == 2
    assert answer["refund"]["status"] == "INITIATED"
    assert len(razorpay.refunds) == 0
    assert await refunds_at_razorpay_after_worker(services, razorpay) == 1
    data = (await api.gql(ORDER, {"id": order.id}, order.buyer.token))["order"]
    by_id = {i["id"]: i for i in data["items"]}
    assert by_id[order.items[1]["id"]]["cancelledQuantity"] == 2
    assert [r["amount"]["amount"] for r in data["refunds"]] == [2 * 25_000]
    await assert_invariants(services.engine)


RETRY = """mutation($id: ID!) { retryRefund(refundId: $id) {
  refund { id status amount { amount } gatewayRefundId } errors { code } } }"""


async def _failed_refund(api: Api, razorpay: RazorpaySimulator) -> tuple[Any, str]:
    order = await paid_order(api, razorpay)
    first = await cancel(api, order.buyer, order.items[0]["id"])
    for delivery in razorpay.fail_refund(first["refund"]["gatewayRefundId"]):
        assert await razorpay.deliver_async(delivery) == 200
    return order, first["refund"]["id"]


async def test_retry_refund_answers_initiated_when_its_follow_up_fails(
    api: Api,
    razorpay: RazorpaySimulator,
    services: Services,
    short_timeout: Callable[[], AbstractContextManager[None]],
) -> None:
    order, refund_id = await _failed_refund(api, razorpay)
    async with follow_up_write_times_out(services.engine):
        answer = (await api.gql(RETRY, {"id": refund_id}, order.buyer.token))["retryRefund"]
    assert answer["errors"] == []
    assert answer["refund"]["status"] == "INITIATED"
    assert answer["refund"]["gatewayRefundId"] is None
    assert await refunds_at_razorpay_after_worker(services, razorpay) == 2  # first + the retry

    order2, refund2 = await _failed_refund(api, razorpay)
    razorpay_down(razorpay)
    with short_timeout():
        down = (await api.gql(RETRY, {"id": refund2}, order2.buyer.token))["retryRefund"]
    assert down["errors"] == []
    assert down["refund"]["status"] == "INITIATED"
    assert await refunds_at_razorpay_after_worker(services, razorpay) == 4
    await assert_invariants(services.engine)


async def test_receive_return_answers_committed_return_and_refund_when_its_follow_up_fails(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, (1, 2, 1))
    await delivered(api, order, 1, 2)
    asked = await request_return(api, order.buyer, order.items[1]["id"], 1)
    assert asked["errors"] == [], asked
    return_id = asked["return"]["id"]
    assert (await approve_return(api, order.sellers[1], return_id))["errors"] == []
    async with follow_up_write_times_out(services.engine):
        answer = await receive_return(api, order.sellers[1], return_id)
    assert answer["errors"] == []
    assert answer["return"]["status"] == "RECEIVED"
    assert answer["refund"]["status"] == "INITIATED"
    before = len(razorpay.refunds)
    assert await refunds_at_razorpay_after_worker(services, razorpay) == before + 1
    await assert_invariants(services.engine)


async def test_checkout_whose_session_opening_times_out_reports_the_order_and_a_retry_finishes(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=30_000, stock=5)
    await api.add_to_cart(buyer, product, 1)
    async with follow_up_write_times_out(services.engine, "payments", "CREATED"):
        first = await api.checkout(buyer, key="owed-checkout-1")
    assert [e["code"] for e in first["errors"]] == ["PAYMENT_GATEWAY_UNAVAILABLE"]
    assert first["order"]["status"] == "PENDING_PAYMENT"
    assert first["order"]["payment"]["razorpayOrderId"] is None
    again = await api.checkout(buyer, key="owed-checkout-1")
    assert again["errors"] == []
    assert again["order"]["id"] == first["order"]["id"]
    assert list(razorpay.orders) == [again["order"]["payment"]["razorpayOrderId"]]
    await assert_invariants(services.engine)
