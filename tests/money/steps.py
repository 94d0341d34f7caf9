"""The steps of a fault schedule: each makes its choices with the world's seeded random and
logs what it did, so a seed replays its schedule."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from joycart.resolvers import jobs
from joycart.resolvers.reconcile import reconcile
from joycart.worker import run_due_jobs, run_once
from tests.helpers import CHECKOUT, bulk_buyers
from tests.money.world import (
    CANCEL,
    FAULTS,
    ORDER_CALL,
    PRICES,
    REFUND_CALL,
    SLOW_DELAY,
    World,
    make_due,
    pass_time,
)


async def set_up(world: World) -> None:
    rng, api, services = world.rng, world.api, world.services
    secret = services.settings.jwt_secret or ""
    seller, *buyers = await bulk_buyers(services.engine, 1 + rng.randint(1, 3), jwt_secret=secret)
    async with services.engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET role = 'SELLER' WHERE id = :id"), {"id": uuid.UUID(seller.id)}
        )
    for n in range(rng.randint(1, 2)):
        price, stock = rng.choice(PRICES), rng.randint(2, 5)
        world.products.append(await api.create_product(seller, price=price, stock=stock))
        world.note(f"product P{n} price {price} stock {stock}")
    world.buyers = buyers
    for b in range(len(buyers)):
        await refill(world, b)


async def refill(world: World, b: int) -> None:
    p = world.rng.randrange(len(world.products))
    q = world.rng.randint(1, 2)
    await world.api.add_to_cart(world.buyers[b], world.products[p], q)
    world.note(f"B{b} puts {q} of P{p} in the cart")


async def checkout(world: World) -> None:
    b = world.rng.randrange(len(world.buyers))
    key = f"schedule-key-{b}-{world.rng.choice((0, 0, 1, 2))}"
    data = await world.api.gql(CHECKOUT, {"key": key}, world.buyers[b].token)
    result = data["checkout"]
    order = result["order"]
    codes = [e["code"] for e in result["errors"]]
    world.note(f"B{b} checks out with {key}: {order and order['status']} {codes}")
    if order is not None:
        world.orders[order["id"]] = (world.buyers[b], order["items"])


async def pay(world: World) -> None:
    open_orders = [o for o in world.razorpay.orders.values() if o["receipt"]]
    if not open_orders:
        return world.note("pay: no Razorpay order yet")
    order = world.rng.choice(open_orders)  # in creation order: ids are random, order is not
    wrong = world.rng.random() < 0.1
    amount = order["amount"] - 100 if wrong else None
    deliveries = world.razorpay.pay(order["id"], amount)
    world.pending.extend(deliveries)
    world.note(f"buyer pays {order['id']} ({'short by 100' if wrong else 'in full'})")


async def deliver(world: World) -> None:
    if not world.pending:
        return world.note("deliver: nothing pending")
    i = world.rng.randrange(len(world.pending))
    delivery = world.pending[i]
    keep = world.rng.random() < 0.25  # delivered again later: a duplicate
    if not keep:
        world.pending.pop(i)
    status = await world.razorpay.deliver_async(delivery)
    world.note(f"deliver {delivery.json()['event']} ({'kept' if keep else 'once'}): {status}")


async def cancel(world: World, *, paid_only: bool = False) -> None:
    candidates = list(world.orders)  # in checkout order (ids are random)
    if paid_only:
        async with world.services.engine.connect() as conn:
            paid = set(
                await conn.scalars(text("SELECT id::text FROM orders WHERE paid_at IS NOT NULL"))
            )
        candidates = [oid for oid in candidates if oid in paid]
    if not candidates:
        return world.note("cancel: no order")
    oid = world.rng.choice(candidates)
    buyer, items = world.orders[oid]
    item = world.rng.choice(items)
    quantity = world.rng.randint(1, item["quantity"])
    before = await _cancelled(world, item["id"])
    data = await world.api.gql(CANCEL, {"id": item["id"], "q": quantity}, buyer.token)
    codes = [e["code"] for e in data["cancelItem"]["errors"]]
    world.note(f"cancel {quantity} of item {item['id'][:8]} of order {oid[:8]}: {codes}")
    if codes and await _cancelled(world, item["id"]) != before:
        world.broken.append(f"g. cancel answered {codes} but was committed (item {item['id']})")


async def _cancelled(world: World, item_id: str) -> int:
    async with world.services.engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT cancelled_quantity FROM order_items WHERE id = :id"),
                {"id": uuid.UUID(item_id)},
            )
        )


async def race_expiry(world: World) -> None:
    """The payment window ends while the buyer retries checkout and a capture arrives: expiry,
    checkout and the webhook run in concurrent transactions (a deadlock fails the schedule)."""
    async with world.services.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE orders SET expires_at = now() - interval '1 second' "
                "WHERE status::text = 'PENDING_PAYMENT'"
            )
        )
    racers: list[Awaitable[Any]] = [run_once(world.services)]
    b = world.rng.randrange(len(world.buyers))
    key = f"schedule-key-{b}-{world.rng.choice((0, 0, 1, 2))}"
    racers.append(world.api.gql(CHECKOUT, {"key": key}, world.buyers[b].token))
    if world.pending:
        racers.append(world.razorpay.deliver_async(world.pending.pop(0)))
    results = await asyncio.gather(*racers, return_exceptions=True)
    world.note(
        f"race: expiry, B{b} checkout {key}, a webhook: {[type(r).__name__ for r in results]}"
    )
    for result in results:
        if isinstance(result, BaseException):
            world.broken.append(f"g. racing expiry raised {type(result).__name__}: {result}")
        elif isinstance(result, int) and result >= 500:
            world.broken.append(f"g. racing expiry: webhook answered {result}")


async def fault(world: World) -> None:
    call = REFUND_CALL if world.rng.random() < 0.8 else ORDER_CALL
    fault = world.rng.choice(FAULTS)
    times = world.rng.randint(1, 2)
    world.razorpay.inject(*call, fault, times=times, delay=SLOW_DELAY)
    world.note(f"fault: next {times} {call[0]} {call[1]} answer {fault}")


async def worker(world: World) -> None:
    await make_due(world.services)
    stats = await run_once(world.services)
    world.note(f"worker pass: {stats}")


async def crashed_worker(world: World) -> None:
    """A worker claims due jobs and dies before running them: its leases must run out."""
    async with world.services.sessions() as session, session.begin():
        claimed = await jobs.claim(session, limit=world.rng.randint(1, 3))
    world.note(f"a worker claims {[j.kind for j in claimed]} and dies")


async def lease_expiry(world: World) -> None:
    await pass_time(world.services, jobs.LEASE + timedelta(seconds=1))
    world.note("time passes beyond the job lease")


async def expire(world: World) -> None:
    async with world.services.engine.begin() as conn:
        n = (
            await conn.execute(
                text(
                    "UPDATE orders SET expires_at = now() - interval '1 second' "
                    "WHERE status::text = 'PENDING_PAYMENT'"
                )
            )
        ).rowcount
    stats = await run_once(world.services)
    world.note(f"payment windows of {n} orders end; worker pass: {stats}")


async def reconcile_apply(world: World) -> None:
    await reconcile(
        world.services.sessions, world.services.gateway, refund_age=timedelta(0), apply=True
    )
    world.note("reconcile --apply")


async def settle_refund(world: World) -> None:
    waiting = [r["id"] for r in world.razorpay.refunds.values() if r["status"] == "pending"]
    if not waiting:
        return world.note("settle: no pending refund at Razorpay")
    refund_id = world.rng.choice(waiting)
    failed = world.rng.random() < 0.2
    deliveries = (world.razorpay.fail_refund if failed else world.razorpay.process_refund)(
        refund_id
    )
    world.pending.extend(deliveries)
    world.note(f"bank {'fails' if failed else 'processes'} refund {refund_id}")


async def outage(world: World) -> None:
    """Razorpay refuses refunds with 500 for up to 30 hours: an owed call survives every retry
    (and a job given up on is revived by reconciliation), so healing still refunds the unit."""
    world.razorpay.inject(*REFUND_CALL, "500", times=40)
    await cancel(world, paid_only=True)  # its refund call fails: a job owes it
    passes = 0
    while passes < 30:
        passes += 1
        async with world.services.engine.connect() as conn:
            owed = await conn.scalar(
                text("SELECT count(*) FROM jobs WHERE status::text = 'PENDING' AND kind = :k"),
                {"k": jobs.SUBMIT_REFUND},
            )
        if not owed:
            break
        await pass_time(world.services, timedelta(hours=1))  # 30 passes: beyond a day
        await make_due(world.services)
        await run_due_jobs(world.services)
    world.razorpay.clear_faults()
    world.note(f"Razorpay refuses refunds with 500 for {passes} worker passes, {passes} hours")


async def lease_lost_mid_call(world: World) -> None:
    """A worker's refund call is slower than its lease: a second worker takes the job meanwhile."""
    world.razorpay.inject(*REFUND_CALL, "500")
    await cancel(world, paid_only=True)  # its refund call fails: a job owes it
    world.razorpay.inject(*REFUND_CALL, "slow", delay=SLOW_DELAY)
    await make_due(world.services)
    seen = len(world.razorpay.requests_to(*REFUND_CALL))
    first = asyncio.create_task(run_due_jobs(world.services))
    for _ in range(50):  # until the first worker's call reached Razorpay (bounded)
        if len(world.razorpay.requests_to(*REFUND_CALL)) > seen or first.done():
            break
        await asyncio.sleep(0.01)
    await pass_time(world.services, jobs.LEASE + timedelta(seconds=1))
    second = await run_due_jobs(world.services)
    world.note(f"lease lost mid-call: first {await first}, second {second}")
