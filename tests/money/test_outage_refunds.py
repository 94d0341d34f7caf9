"""A day and more of Razorpay trouble strands nothing: the owed refund keeps being retried for
24 hours before it is declared DEAD, the DEAD job is listed by reconciliation, which owes the call
again, and after recovery exactly one refund exists at Razorpay. The clock is injected; nobody
sleeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from joycart import cli_jobs
from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers import jobs
from joycart.resolvers.reconcile import reconcile
from joycart.worker import run_due_jobs
from tests.api.test_cancellation import cancel, paid_order
from tests.helpers import Api, assert_invariants


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(services: Services, monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(datetime.now(UTC))
    monkeypatch.setattr(services, "clock", fake)  # undone after the test
    return fake


async def _job(services: Services) -> tuple[str, int]:
    async with services.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, attempts FROM jobs WHERE kind = 'submit_refund'")
            )
        ).one()
    return row.status, row.attempts


async def _refunded_at_razorpay(razorpay: RazorpaySimulator, gateway_payment: str) -> int:
    return sum(1 for r in razorpay.refunds.values() if r["payment_id"] == gateway_payment)


async def test_a_refund_api_down_for_30_hours_ends_with_exactly_one_refund(
    api: Api, razorpay: RazorpaySimulator, services: Services, clock: Clock
) -> None:
    order = await paid_order(api, razorpay)
    gateway_payment = next(iter(razorpay.payments))
    razorpay.inject("POST", "/v1/payments", "500", times=100_000)  # refunds down
    started = clock.now
    await cancel(api, order.buyer, order.items[0]["id"])
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT gateway_refund_id FROM refunds")) is None

    dead_at = None
    while clock.now - started < timedelta(hours=30):
        clock.now += timedelta(minutes=10)
        await run_due_jobs(services)
        status, attempts = await _job(services)
        if status == "DEAD" and dead_at is None:
            dead_at = clock.now - started
    assert dead_at is not None
    assert timedelta(hours=24) <= dead_at <= timedelta(hours=24, minutes=40)  # not at 8 h
    assert attempts > jobs.MAX_ATTEMPTS  # it kept trying the whole day
    assert await _refunded_at_razorpay(razorpay, gateway_payment) == 0

    razorpay.clear_faults()  # Razorpay recovers
    report = await reconcile(
        services.sessions, services.gateway, refund_age=timedelta(0), apply=True, now=clock.now
    )
    lines = "\n".join(report.lines())
    assert "DEAD jobs (stopped retrying; see `joycart jobs`): 1" in lines
    assert "submit_refund" in report.dead_jobs[0]
    assert "attempts=" in report.dead_jobs[0]
    assert report.requeued == [f"submit_refund refund_id={_refund_id(report.dead_jobs[0])}"]

    clock.now += timedelta(minutes=1)
    await run_due_jobs(services)
    clock.now += timedelta(minutes=1)
    await run_due_jobs(services)  # nothing left to do: the job is DONE, not submitted twice

    assert await _refunded_at_razorpay(razorpay, gateway_payment) == 1
    async with services.engine.connect() as conn:
        states = (
            await conn.execute(text("SELECT status FROM jobs WHERE kind = 'submit_refund'"))
        ).scalars()
        assert list(states) == ["DONE"]  # the DEAD job itself was revived: one row per call
        assert await conn.scalar(text("SELECT gateway_refund_id FROM refunds")) is not None
    await assert_invariants(services.engine)


async def test_a_dead_refund_job_retried_by_jobs_retry_dead_makes_exactly_one_refund(
    api: Api, razorpay: RazorpaySimulator, services: Services, clock: Clock
) -> None:
    order = await paid_order(api, razorpay)
    gateway_payment = next(iter(razorpay.payments))
    razorpay.inject("POST", "/v1/payments", "500", times=100_000)  # refunds down for a day
    started = clock.now
    await cancel(api, order.buyer, order.items[1]["id"])
    while (await _job(services))[0] != "DEAD":
        clock.now += timedelta(minutes=10)
        assert clock.now - started < timedelta(hours=26), "the job never went DEAD"
        await run_due_jobs(services)
    assert await _refunded_at_razorpay(razorpay, gateway_payment) == 0

    razorpay.clear_faults()  # Razorpay recovers; the operator brings the DEAD jobs back
    code, said = await cli_jobs.run(
        services.sessions, cli_jobs.parse(["jobs", "retry", "--dead"]), now=clock.now
    )
    assert (code, said) == (0, "1 DEAD job(s) due again now")
    for _ in range(3):  # one pass does it; the later ones find nothing owed
        clock.now += timedelta(minutes=1)
        await run_due_jobs(services)

    assert await _refunded_at_razorpay(razorpay, gateway_payment) == 1
    assert await _job(services) == ("DONE", 1)
    await assert_invariants(services.engine)


def _refund_id(dead_line: str) -> str:
    return dead_line.split("refund_id=")[1].split()[0]


async def test_reconciliation_owes_again_a_refund_and_a_razorpay_order_whose_job_is_missing(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    razorpay.inject("POST", "/v1/payments", "500", times=100)
    await cancel(api, order.buyer, order.items[0]["id"])
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=5_000, stock=2)
    await api.add_to_cart(buyer, product, 1)
    razorpay.inject("POST", "/v1/orders", "500")
    await api.checkout(buyer)
    async with services.engine.begin() as conn:  # the owed jobs are lost (a bad manual fix)
        await conn.execute(text("DELETE FROM jobs"))

    dry = await reconcile(services.sessions, services.gateway, refund_age=timedelta(0), apply=False)
    assert dry.requeued == []
    report = await reconcile(
        services.sessions, services.gateway, refund_age=timedelta(0), apply=True
    )
    again = await reconcile(
        services.sessions, services.gateway, refund_age=timedelta(0), apply=True
    )

    assert sorted(line.split()[0] for line in report.requeued) == [
        "create_gateway_order",
        "submit_refund",
    ]
    assert again.requeued == []  # a live job is not owed twice
    razorpay.clear_faults()
    async with services.engine.begin() as conn:
        await conn.execute(text("UPDATE jobs SET run_at = now() WHERE status = 'PENDING'"))
    await run_due_jobs(services)
    async with services.engine.connect() as conn:
        assert (
            await conn.scalar(text("SELECT count(*) FROM refunds WHERE gateway_refund_id IS NULL"))
            == 0
        )
        assert (
            await conn.scalar(text("SELECT count(*) FROM payments WHERE razorpay_order_id IS NULL"))
            == 0
        )
    assert len(razorpay.refunds) == 1
    await assert_invariants(services.engine)
