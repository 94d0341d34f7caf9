"""`joycart reconcile`: report what Razorpay knows and we do not; --apply goes through webhooks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers.reconcile import reconcile
from joycart.worker import run_due_jobs, schedule_reconciliation
from tests.api.test_cancellation import cancel, paid_order
from tests.helpers import Api, assert_invariants, make_jobs_due


async def test_reconcile_reports_then_applies_a_lost_capture_and_a_lost_refund_webhook(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    refund = (await cancel(api, order.buyer, order.items[0]["id"]))["refund"]
    razorpay.process_refund(refund["gatewayRefundId"])  # its webhook never arrives
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=5_000, stock=2)
    await api.add_to_cart(buyer, product, 1)
    unpaid = (await api.checkout(buyer))["order"]
    razorpay.pay(unpaid["payment"]["razorpayOrderId"])  # captured; the webhook is lost

    report = await reconcile(
        services.sessions, services.gateway, refund_age=timedelta(0), apply=False
    )

    assert len(report.unrecorded_captures) == 1
    assert unpaid["id"] in report.unrecorded_captures[0]
    assert len(report.stale_refunds) == 1
    assert report.stale_refunds[0].endswith("processed")
    assert report.applied == []
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM orders WHERE paid_at IS NOT NULL")) == 1

    applied = await reconcile(
        services.sessions, services.gateway, refund_age=timedelta(0), apply=True
    )

    assert len(applied.applied) == 2
    async with services.engine.connect() as conn:
        assert (
            await conn.scalar(
                text("SELECT status FROM orders WHERE id = :id"), {"id": unpaid["id"]}
            )
            == "PAID"
        )
        assert await conn.scalar(text("SELECT status FROM refunds")) == "REFUNDED"
    again = await reconcile(
        services.sessions, services.gateway, refund_age=timedelta(0), apply=True
    )
    assert again.unrecorded_captures == []
    assert again.stale_refunds == []
    await assert_invariants(services.engine)


async def test_the_worker_reconciles_on_its_own_and_keeps_one_job_scheduled(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=5_000, stock=2)
    await api.add_to_cart(buyer, product, 1)
    order = (await api.checkout(buyer))["order"]
    razorpay.pay(order["payment"]["razorpayOrderId"])  # captured; the webhook is lost
    async with services.sessions() as session, session.begin():
        await schedule_reconciliation(session)
        await schedule_reconciliation(session)  # a second worker starting: still one job

    await make_jobs_due(services.engine)
    await run_due_jobs(services)  # the session is too young to ask about yet
    async with services.engine.begin() as conn:
        assert await conn.scalar(text("SELECT status FROM orders")) == "PENDING_PAYMENT"
        await conn.execute(text("UPDATE payments SET created_at = now() - interval '6 minutes'"))

    await make_jobs_due(services.engine)
    await run_due_jobs(services)

    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT status FROM orders")) == "PAID"
        pending = await conn.scalar(
            text("SELECT count(*) FROM jobs WHERE kind = 'reconcile' AND status = 'PENDING'")
        )
    assert pending == 1
    await assert_invariants(services.engine)
