"""Expiry and checkout take product locks in one order (by id, across the whole batch), so they
never deadlock; and a checkout holding its buyer's row does not block that buyer's cancel."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import User
from joycart.resolvers import checkout, orders
from tests.api.test_cancellation import cancel, paid_order
from tests.helpers import Api, assert_invariants

ROUNDS = 6


async def _until_waiting_on_locks(engine: AsyncEngine, count: int) -> None:
    """Wait (by asking PostgreSQL, not by sleeping on a guess) until `count` backends of this
    database are blocked on a lock."""
    async with engine.connect() as conn:
        for _ in range(2000):
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
            if waiting == count:
                return
            await conn.rollback()
            await asyncio.sleep(0.01)  # a poll interval, not a timing assumption
    raise AssertionError(f"never saw {count} backends waiting on locks")


async def _lock(conn: AsyncConnection, product_id: str) -> None:
    await conn.execute(text("SELECT 1 FROM products WHERE id = :id FOR UPDATE"), {"id": product_id})


async def _expire(services: Services) -> int:
    async with services.sessions() as session, session.begin():
        return await orders.expire_due_orders(session)


async def _place(services: Services, buyer: User, key: str) -> checkout.CheckoutResult:
    return await checkout.checkout(
        services.sessions,
        buyer=buyer,
        idempotency_key=key,
        gateway=services.gateway,
        payment_window=timedelta(minutes=30),
    )


async def test_expiry_of_a_batch_racing_a_checkout_of_the_same_products_never_deadlocks(
    api: Api, services: Services
) -> None:
    for round_no in range(ROUNDS):
        seller = await api.register("SELLER")
        low, high = sorted([await api.create_product(seller, stock=10) for _ in range(2)])
        # One buyer's two unpaid orders: the first to expire holds the higher product id, the
        # next the lower one. Returned order by order, that is `high` then `low`.
        owner = await api.register("USER")
        placed = []
        for product in (high, low):
            await api.add_to_cart(owner, product, 1)
            placed.append((await api.checkout(owner))["order"]["id"])
        async with services.engine.begin() as conn:
            for minutes, order_id in zip((20, 10), placed, strict=True):
                await conn.execute(
                    text(
                        "UPDATE orders SET expires_at = now() - make_interval(mins => :m)"
                        " WHERE id = :id"
                    ),
                    {"m": minutes, "id": order_id},
                )
        shopper = await api.register("USER")
        await api.add_to_cart(shopper, low, 1)
        await api.add_to_cart(shopper, high, 1)
        async with services.sessions() as session:
            buyer = await session.get_one(User, shopper.id)

        # The gate holds both products, each in its own savepoint, so it can let them go one at a
        # time: first `high` (what old expiry wanted first), then, once both sides wait again,
        # `low`. Old expiry then held `high` and waited for `low` while checkout took `low` and
        # waited for `high`: a deadlock. Now expiry, like checkout, wants `low` first.
        async with services.engine.connect() as gate:
            await gate.begin()
            hold_low = await gate.begin_nested()
            await _lock(gate, low)
            hold_high = await gate.begin_nested()
            await _lock(gate, high)
            expiring = asyncio.create_task(_expire(services))
            placing = asyncio.create_task(_place(services, buyer, f"lock-order-{round_no}"))
            await _until_waiting_on_locks(services.engine, 2)
            await hold_high.rollback()
            await _until_waiting_on_locks(services.engine, 2)
            await hold_low.rollback()
            await gate.rollback()
            # any deadlock error raises here
            expired, placed_now = await asyncio.gather(expiring, placing)

        assert expired == 2
        assert placed_now.gateway_error is None
        async with services.engine.connect() as conn:
            stock = dict(
                (str(r.id), r.stock)
                for r in await conn.execute(
                    text("SELECT id, stock FROM products WHERE id IN (:a, :b)"),
                    {"a": low, "b": high},
                )
            )
        assert stock == {low: 9, high: 9}  # 10, -1 each order, +1 each expiry, -1 the checkout
        await assert_invariants(services.engine)


async def test_a_checkout_holding_its_buyer_row_does_not_block_that_buyers_cancel(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await paid_order(api, razorpay)
    seller = await api.register("SELLER")
    another = await api.create_product(seller, stock=5)
    await api.add_to_cart(order.buyer, another, 1)
    async with services.sessions() as session:
        buyer = await session.get_one(User, order.buyer.id)
    # A real checkout, stopped after it took its buyer-row lock: the gate holds the product it
    # is about to take. Meanwhile the same buyer cancels an item of the earlier order (its
    # foreign-key checks on the buyer row take FOR KEY SHARE).
    async with services.engine.connect() as gate:
        await gate.begin()
        await _lock(gate, another)
        placing = asyncio.create_task(
            checkout.checkout(
                services.sessions,
                buyer=buyer,
                idempotency_key="buyer-row-cancel",
                gateway=services.gateway,
                payment_window=timedelta(minutes=30),
            )
        )
        await _until_waiting_on_locks(services.engine, 1)
        answer = await asyncio.wait_for(cancel(api, order.buyer, order.items[0]["id"]), timeout=10)
        await gate.rollback()
        placed = await placing
    assert answer["errors"] == []
    assert answer["orderItem"]["cancelledQuantity"] == 1
    assert placed.gateway_error is None
    await assert_invariants(services.engine)
