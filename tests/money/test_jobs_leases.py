"""Job leases that hold: a job slower than its lease runs once, and a worker that lost its lease
(or whose job was settled inline) changes nothing. Real PostgreSQL, the real SDK, the fake
Razorpay; the two workers are real concurrent passes with their own lease tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers import jobs
from joycart.worker import RunStats, run_due_jobs
from tests.api.test_cancellation import cancel, paid_order
from tests.helpers import Api, assert_invariants, make_jobs_due

SHORT_LEASE = timedelta(seconds=0.3)


async def _order_owing_a_razorpay_order(api: Api, razorpay: RazorpaySimulator) -> str:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=30_000, stock=5)
    await api.add_to_cart(buyer, product, 1)
    razorpay.inject("POST", "/v1/orders", "500")
    placed = await api.checkout(buyer)
    assert placed["order"]["payment"]["razorpayOrderId"] is None  # owed to the worker
    return str(placed["order"]["id"])


async def _job_states(services: Services) -> list[tuple[str, str, int]]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(text("SELECT kind, status, attempts FROM jobs ORDER BY id"))
        return [tuple(r) for r in rows]


async def _other_worker_until(done: asyncio.Task[RunStats], services: Services) -> RunStats:
    """Worker B: passes (with its own claims) for as long as worker A's job runs."""
    async with services.engine.connect() as conn:  # B starts once A holds the job
        held = text("SELECT bool_or(lease_token IS NOT NULL) FROM jobs")
        while not await conn.scalar(held):  # noqa: ASYNC110 - the claim is in another session
            await asyncio.sleep(0.01)
    total = RunStats()
    while not done.done():
        stats = await run_due_jobs(services, lease=SHORT_LEASE)
        total.jobs_done += stats.jobs_done
        total.jobs_retried += stats.jobs_retried
        await asyncio.sleep(0.05)  # poll interval of a worker, not a wait for a timing
    return total


async def _refund_owed_to_the_worker(api: Api, razorpay: RazorpaySimulator) -> str:
    order = await paid_order(api, razorpay)
    razorpay.inject("POST", "/v1/payments", "500")  # the inline call fails: the job owes it
    refund = (await cancel(api, order.buyer, order.items[0]["id"]))["refund"]
    assert refund["gatewayRefundId"] is None
    return next(iter(razorpay.payments))


@pytest.mark.parametrize("renew", [True, False], ids=["renewed", "lease-lost"])
async def test_a_refund_job_slower_than_its_lease_refunds_once(
    renew: bool, api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    gateway_payment = await _refund_owed_to_the_worker(api, razorpay)
    await make_jobs_due(services.engine)
    razorpay.inject("POST", "/v1/payments", "slow", delay=1.5)

    worker_a = asyncio.create_task(run_due_jobs(services, lease=SHORT_LEASE, renew=renew))
    b = await _other_worker_until(worker_a, services)
    await worker_a
    if renew:
        assert (b.jobs_done, b.jobs_retried) == (0, 0)
    else:  # B did take the job over while A's call was still out at Razorpay
        assert b.jobs_done + b.jobs_retried >= 1
    await make_jobs_due(services.engine)
    await run_due_jobs(services)

    refunds = [r for r in razorpay.refunds.values() if r["payment_id"] == gateway_payment]
    assert len(refunds) == 1
    assert [s for k, s, _ in await _job_states(services) if k == "submit_refund"] == ["DONE"]
    await assert_invariants(services.engine)


async def test_a_job_slower_than_its_lease_is_renewed_and_never_run_twice(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    await _order_owing_a_razorpay_order(api, razorpay)
    await make_jobs_due(services.engine)
    razorpay.inject("POST", "/v1/orders", "slow", delay=1.5)  # five leases long

    worker_a = asyncio.create_task(run_due_jobs(services, lease=SHORT_LEASE))
    b = await _other_worker_until(worker_a, services)
    a = await worker_a

    assert (a.jobs_done, a.jobs_retried) == (1, 0)
    assert (b.jobs_done, b.jobs_retried) == (0, 0)  # the renewed lease kept it A's throughout
    assert len(razorpay.orders) == 1
    assert len(razorpay.requests_to("POST", "/v1/orders")) == 2  # the 500, then A's one call
    assert await _job_states(services) == [("create_gateway_order", "DONE", 1)]
    await assert_invariants(services.engine)


async def test_a_worker_that_lost_its_lease_mid_call_does_not_make_the_call_twice(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    await _order_owing_a_razorpay_order(api, razorpay)
    await make_jobs_due(services.engine)
    razorpay.inject("POST", "/v1/orders", "slow", delay=1.5)

    # A stalls without renewing (a paused process): its lease runs out while its call is out.
    worker_a = asyncio.create_task(run_due_jobs(services, lease=SHORT_LEASE, renew=False))
    b = await _other_worker_until(worker_a, services)
    await worker_a
    assert b.jobs_done + b.jobs_retried >= 1  # B took the job over while A's call was out
    await make_jobs_due(services.engine)
    await run_due_jobs(services)  # whatever is still owed finishes

    assert len(razorpay.orders) == 1
    assert len(razorpay.requests_to("POST", "/v1/orders")) == 2
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT razorpay_order_id FROM payments")) in razorpay.orders
    assert [s for _, s, _ in await _job_states(services)] == ["DONE"]
    await assert_invariants(services.engine)


async def _one_job(services: Services) -> None:
    async with services.sessions() as session, session.begin():
        await jobs.enqueue(
            session,
            jobs.DELETE_IMAGE,
            {"store": "LOCAL", "key": "k"},
            dedupe_key="delete:k",
            delay=timedelta(0),
        )


async def _claim(services: Services, now: datetime) -> jobs.ClaimedJob:
    async with services.sessions() as session, session.begin():
        (job,) = await jobs.claim(session, now=now)
    return job


async def _row(services: Services) -> tuple[object, ...]:
    async with services.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT status, attempts, lease_token IS NULL FROM jobs"))
        ).one()
    return tuple(row)


async def test_a_lost_lease_completes_retries_and_kills_nothing(services: Services) -> None:
    await _one_job(services)
    t0 = datetime.now(UTC)
    lost = await _claim(services, t0)
    holder = await _claim(services, t0 + jobs.LEASE + timedelta(seconds=1))  # A's ran out

    async with services.sessions() as session, session.begin():
        assert not await jobs.complete(session, lost)
        assert not await jobs.retry_later(session, lost, "late", now=t0)
        assert not await jobs.dead(session, lost, "late")
        assert not await jobs.renew(session, lost, now=t0)
        assert await jobs.release(session, [lost]) == 0
    assert await _row(services) == ("PENDING", 2, False)  # the re-claim counted once

    async with services.sessions() as session, session.begin():
        assert await jobs.complete(session, holder)
        assert not await jobs.retry_later(session, lost, "late", now=t0)  # DONE stays DONE
    assert await _row(services) == ("DONE", 2, True)


async def test_a_job_settled_inline_is_not_set_back_by_the_worker_holding_it(
    services: Services,
) -> None:
    await _one_job(services)
    held = await _claim(services, datetime.now(UTC))
    async with services.sessions() as session, session.begin():
        await jobs.settle(session, "delete:k")  # a mutation did the work itself
    async with services.sessions() as session, session.begin():
        assert not await jobs.retry_later(session, held, "timed out")
        assert not await jobs.complete(session, held)
    assert await _row(services) == ("DONE", 1, True)


async def test_lock_busy_gives_the_attempt_back_and_looks_again_soon(services: Services) -> None:
    await _one_job(services)
    t0 = datetime.now(UTC)
    job = await _claim(services, t0)
    async with services.sessions() as session, session.begin():
        assert await jobs.retry_later(session, job, "LockBusy", now=t0, counts=False)
    async with services.engine.connect() as conn:
        attempts, run_at = (await conn.execute(text("SELECT attempts, run_at FROM jobs"))).one()
    assert attempts == 0
    assert run_at == t0 + jobs.BUSY_RETRY
