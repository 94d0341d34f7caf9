"""Reconciliation is bounded: it asks only about sessions that can still be paid (open, or closed
less than a day ago), reads them in keyset pages, and renews its lease between pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers import reconcile as reconcile_module
from joycart.resolvers.reconcile import reconcile
from tests.helpers import Api


async def _unpaid_sessions(api: Api, n: int) -> list[str]:
    seller = await api.register("SELLER")
    product = await api.create_product(seller, price=5_000, stock=n)
    orders = []
    for _ in range(n):
        buyer = await api.register("USER")
        await api.add_to_cart(buyer, product, 1)
        orders.append((await api.checkout(buyer))["order"]["payment"]["razorpayOrderId"])
    return orders


async def test_reconcile_pages_and_skips_sessions_that_cannot_be_paid_any_more(
    api: Api, razorpay: RazorpaySimulator, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile_module, "PAGE", 2)
    rzp_orders = await _unpaid_sessions(api, 6)
    long_closed, recently_closed, superseded_long_ago = rzp_orders[:3]
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE payments SET status = 'CANCELLED', updated_at = now() - interval '25 hours'"
                " WHERE razorpay_order_id = :a"
            ),
            {"a": long_closed},
        )
        await conn.execute(
            text(
                "UPDATE payments SET status = 'SUPERSEDED', "
                "updated_at = now() - interval '30 hours' WHERE razorpay_order_id = :a"
            ),
            {"a": superseded_long_ago},
        )
        await conn.execute(
            text(
                "UPDATE payments SET status = 'CANCELLED', updated_at = now() - interval '1 hour'"
                " WHERE razorpay_order_id = :a"
            ),
            {"a": recently_closed},
        )
        await conn.execute(  # a failed attempt leaves the session open: the buyer may retry
            text(
                "UPDATE payments SET status = 'FAILED', updated_at = now() - interval '30 hours'"
                " WHERE razorpay_order_id = :a"
            ),
            {"a": rzp_orders[3]},
        )
    razorpay.pay(recently_closed)  # the buyer paid just as the session closed: still found
    renewals = 0

    async def renew() -> None:
        nonlocal renewals
        renewals += 1

    report = await reconcile(
        services.sessions, services.gateway, refund_age=timedelta(0), apply=False, renew=renew
    )

    asked = {r.path.split("/")[3] for r in razorpay.requests_to("GET", "/v1/orders/")}
    assert asked == set(rzp_orders) - {long_closed, superseded_long_ago}
    assert report.sessions_asked == 4
    assert renewals == 2  # two full pages of two, then a short one ends the walk
    assert len(report.unrecorded_captures) == 1
    assert recently_closed in report.unrecorded_captures[0]
