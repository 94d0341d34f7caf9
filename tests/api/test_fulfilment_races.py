"""Races with real concurrent requests: cancels against shipments for the last units, receives
of one return, and a return and a cancel of different units of one item."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.api.fulfilment_steps import (
    addressed_paid_order,
    approve_return,
    delivered,
    order_view,
    receive_return,
    request_return,
    ship,
)
from tests.api.test_cancellation import cancel
from tests.helpers import Api, assert_invariants


async def _counts(services: Services, item_id: str) -> tuple[int, int, int]:
    async with services.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT quantity, cancelled_quantity, shipped_quantity FROM order_items "
                    "WHERE id = :id"
                ),
                {"id": item_id},
            )
        ).one()
    return row[0], row[1], row[2]


async def test_twenty_concurrent_cancels_and_shipments_never_overcommit_the_last_units(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(1, 5, 1))
    seller, item_id = order.sellers[1], order.items[1]["id"]
    assert (await ship(api, seller, [(item_id, 2)]))["errors"] == []  # 3 units left to fight for

    async def one_cancel(i: int) -> tuple[str, dict[str, Any]]:
        who = order.buyer if i % 2 else seller  # the buyer and the seller both may cancel
        return "cancel", await cancel(api, who, item_id, 1)

    async def one_shipment(i: int) -> tuple[str, dict[str, Any]]:
        return "ship", await ship(api, seller, [(item_id, 1)], tracking=f"RACE{i:04d}")

    attempts = [one_cancel(i) if i % 2 else one_shipment(i) for i in range(20)]
    results = await asyncio.gather(*attempts)

    won = [(kind, r) for kind, r in results if not r["errors"]]
    assert len(won) == 3
    assert {e["code"] for _, r in results for e in r["errors"]} == {"INVALID_STATE"}
    cancels = sum(1 for kind, _ in won if kind == "cancel")
    quantity, cancelled, shipped = await _counts(services, item_id)
    assert (quantity, cancelled, shipped) == (5, cancels, 2 + 3 - cancels)
    async with services.engine.connect() as conn:
        refunds = await conn.scalar(
            text("SELECT count(*) FROM refunds WHERE order_item_id = :i"), {"i": item_id}
        )
        shipments = await conn.scalar(text("SELECT count(*) FROM shipments"))
    assert refunds == cancels
    assert shipments == 1 + 3 - cancels
    assert len(razorpay.requests_to("POST", "/v1/payments/")) == cancels
    await assert_invariants(services.engine)


async def test_a_cancel_and_a_shipment_racing_for_the_last_unit_exactly_one_wins(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    for round_ in range(4):  # a few rounds: either may get the order's lock first
        order = await addressed_paid_order(api, razorpay, quantities=(1, 2, 1))
        seller, item_id = order.sellers[1], order.items[1]["id"]
        assert (await ship(api, seller, [(item_id, 1)]))["errors"] == []  # one unit left
        cancelled, shipped = await asyncio.gather(
            cancel(api, order.buyer, item_id, 1),
            ship(api, seller, [(item_id, 1)], tracking=f"LAST{round_}"),
        )
        outcomes = {"cancel": cancelled, "ship": shipped}
        won = [kind for kind, result in outcomes.items() if not result["errors"]]
        assert len(won) == 1, outcomes
        [loser] = [r for r in outcomes.values() if r["errors"]]
        assert [e["code"] for e in loser["errors"]] == ["INVALID_STATE"]
        assert await _counts(services, item_id) == ((2, 1, 1) if won == ["cancel"] else (2, 0, 2))
        await assert_invariants(services.engine)


async def test_concurrent_receives_of_one_return_make_one_refund(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await addressed_paid_order(api, razorpay, quantities=(1, 3, 1))
    seller, item_id = order.sellers[1], order.items[1]["id"]
    await delivered(api, order, 1, 3)
    asked = await request_return(api, order.buyer, item_id, 2)
    return_id = asked["return"]["id"]
    assert (await approve_return(api, seller, return_id))["errors"] == []

    results = await asyncio.gather(
        *(receive_return(api, seller, return_id, restock=True) for _ in range(12))
    )

    assert sum(1 for r in results if not r["errors"]) == 1
    assert {e["code"] for r in results for e in r["errors"]} == {"INVALID_STATE"}
    async with services.engine.connect() as conn:
        refunds = (await conn.execute(text("SELECT amount, quantity, reason FROM refunds"))).all()
        restocked = await conn.scalar(
            text("SELECT count(*) FROM stock_ledger WHERE reason = 'RETURN'")
        )
    assert [tuple(r) for r in refunds] == [(2 * 25_000, 2, "RETURN")]
    assert restocked == 1
    assert len(razorpay.requests_to("POST", "/v1/payments/")) == 1
    await assert_invariants(services.engine)


async def test_a_return_and_a_cancel_of_different_units_of_one_item_both_settle(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    for _ in range(3):  # a few rounds: the two requests interleave differently each time
        order = await addressed_paid_order(api, razorpay, quantities=(1, 4, 1))
        seller, item_id = order.sellers[1], order.items[1]["id"]
        await delivered(api, order, 1, 2)  # 2 units delivered, 2 still awaiting shipment
        asked = await request_return(api, order.buyer, item_id, 1)
        return_id = asked["return"]["id"]
        assert (await approve_return(api, seller, return_id))["errors"] == []

        received, cancelled = await asyncio.gather(
            receive_return(api, seller, return_id, restock=False),
            cancel(api, order.buyer, item_id, 2),
        )

        assert received["errors"] == []
        assert cancelled["errors"] == []
        settle = [received["refund"]["gatewayRefundId"], cancelled["refund"]["gatewayRefundId"]]
        for gateway_id in settle:
            for delivery in razorpay.process_refund(gateway_id):
                assert await razorpay.deliver_async(delivery) == 200
        seen = await order_view(api, order.buyer, order.id)
        assert seen is not None
        item = next(i for i in seen["items"] if i["id"] == item_id)
        assert (item["cancelledQuantity"], item["deliveredQuantity"], item["returnedQuantity"]) == (
            2,
            2,
            1,
        )
        assert item["status"] == "PARTIALLY_RETURNED"
        refunds = sorted(
            (r["reason"], r["quantity"], r["amount"]["amount"], r["status"])
            for r in seen["refunds"]
        )
        assert refunds == [
            ("CANCELLATION", 2, 50_000, "REFUNDED"),
            ("RETURN", 1, 25_000, "REFUNDED"),
        ]
        assert seen["status"] == "PARTIALLY_RETURNED"
        await assert_invariants(services.engine)
