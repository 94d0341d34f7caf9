"""One random fault schedule: buyers check out, pay, cancel units, while Razorpay fails, workers
crash, leases run out, webhooks arrive late, twice or out of order. Every choice comes from one
seeded `random.Random`, and every step is logged, so a seed replays its schedule."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator, WebhookDelivery
from joycart.resolvers import jobs
from joycart.resolvers.reconcile import reconcile
from joycart.worker import run_once
from tests.helpers import CHECKOUT, Account, Api, bulk_buyers

CANCEL = """mutation($id: ID!, $q: Int) { cancelItem(orderItemId: $id, quantity: $q, reason: "x") {
    orderItem { id } errors { code } } }"""
PRICES = (10_000, 25_000, 40_000)
REFUND_CALL = ("POST", "/v1/payments/")  # POST /v1/payments/{id}/refund
ORDER_CALL = ("POST", "/v1/orders")
# Faults of the fake; "slow" answers after SLOW_DELAY, beyond the test's gateway timeout, and
# holds the idempotency key meanwhile, so a retry in that window gets Razorpay's 409.
FAULTS = ("500", "html502", "slow", "drop_after_acting", "drop_before_acting", "409", "429")
SLOW_DELAY = 0.6
# Step kinds and their weights (a paid order needs checkout, pay and deliveries before cancels).
WEIGHTS = {
    "checkout": 3, "refill": 1, "pay": 3, "deliver": 5, "cancel": 4, "fault": 3, "worker": 2,
    "crashed_worker": 1, "lease_expiry": 1, "expire": 1, "reconcile": 1, "settle_refund": 2,
    "race_expiry": 1,
}  # fmt: skip


@dataclass
class World:
    services: Services
    razorpay: RazorpaySimulator
    api: Api
    rng: random.Random
    buyers: list[Account] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    orders: dict[str, tuple[Account, list[dict[str, Any]]]] = field(default_factory=dict)
    pending: list[WebhookDelivery] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # seen during the steps (answers to clients)

    def note(self, line: str) -> None:
        self.log.append(line)


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
        await _refill(world, b)


async def _refill(world: World, b: int) -> None:
    p = world.rng.randrange(len(world.products))
    q = world.rng.randint(1, 2)
    await world.api.add_to_cart(world.buyers[b], world.products[p], q)
    world.note(f"B{b} puts {q} of P{p} in the cart")


async def _checkout(world: World) -> None:
    b = world.rng.randrange(len(world.buyers))
    key = f"schedule-key-{b}-{world.rng.choice((0, 0, 1, 2))}"
    data = await world.api.gql(CHECKOUT, {"key": key}, world.buyers[b].token)
    result = data["checkout"]
    order = result["order"]
    codes = [e["code"] for e in result["errors"]]
    world.note(f"B{b} checks out with {key}: {order and order['status']} {codes}")
    if order is not None:
        world.orders[order["id"]] = (world.buyers[b], order["items"])


async def _pay(world: World) -> None:
    open_orders = [o for o in world.razorpay.orders.values() if o["receipt"]]
    if not open_orders:
        return world.note("pay: no Razorpay order yet")
    order = world.rng.choice(open_orders)  # in creation order: ids are random, order is not
    wrong = world.rng.random() < 0.1
    amount = order["amount"] - 100 if wrong else None
    deliveries = world.razorpay.pay(order["id"], amount)
    world.pending.extend(deliveries)
    world.note(f"buyer pays {order['id']} ({'short by 100' if wrong else 'in full'})")


async def _deliver(world: World) -> None:
    if not world.pending:
        return world.note("deliver: nothing pending")
    i = world.rng.randrange(len(world.pending))
    delivery = world.pending[i]
    keep = world.rng.random() < 0.25  # delivered again later: a duplicate
    if not keep:
        world.pending.pop(i)
    status = await world.razorpay.deliver_async(delivery)
    world.note(f"deliver {delivery.json()['event']} ({'kept' if keep else 'once'}): {status}")


async def _cancel(world: World) -> None:
    if not world.orders:
        return world.note("cancel: no order")
    oid = world.rng.choice(list(world.orders))  # in checkout order (ids are random)
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


async def _race_expiry(world: World) -> None:
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


async def _fault(world: World) -> None:
    call = REFUND_CALL if world.rng.random() < 0.8 else ORDER_CALL
    fault = world.rng.choice(FAULTS)
    times = world.rng.randint(1, 2)
    world.razorpay.inject(*call, fault, times=times, delay=SLOW_DELAY)
    world.note(f"fault: next {times} {call[0]} {call[1]} answer {fault}")


async def _worker(world: World) -> None:
    await make_due(world.services)
    stats = await run_once(world.services)
    world.note(f"worker pass: {stats}")


async def _crashed_worker(world: World) -> None:
    """A worker claims due jobs and dies before running them: its leases must run out."""
    async with world.services.sessions() as session, session.begin():
        claimed = await jobs.claim(session, limit=world.rng.randint(1, 3))
    world.note(f"a worker claims {[j.kind for j in claimed]} and dies")


async def _lease_expiry(world: World) -> None:
    await pass_time(world.services, jobs.LEASE + timedelta(seconds=1))
    world.note("time passes beyond the job lease")


async def _expire(world: World) -> None:
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


async def _reconcile(world: World) -> None:
    await reconcile(
        world.services.sessions, world.services.gateway, refund_age=timedelta(0), apply=True
    )
    world.note("reconcile --apply")


async def _settle_refund(world: World) -> None:
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


ACTIONS = {
    "checkout": _checkout,
    "pay": _pay,
    "deliver": _deliver,
    "cancel": _cancel,
    "fault": _fault,
    "worker": _worker,
    "crashed_worker": _crashed_worker,
    "lease_expiry": _lease_expiry,
    "expire": _expire,
    "reconcile": _reconcile,
    "settle_refund": _settle_refund,
    "race_expiry": _race_expiry,
}


async def make_due(services: Services) -> None:
    async with services.engine.begin() as conn:
        await conn.execute(text("UPDATE jobs SET run_at = now() WHERE status::text = 'PENDING'"))


class ShiftedClock:
    """`Services.clock` for the schedules: the real time plus however far the test moved it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def pass_time(services: Services, by: timedelta) -> None:
    """Time moves on: the injected clock, and every lease and due time the database holds (the
    code that reads the database's now() sees the same passing of time)."""
    if isinstance(services.clock, ShiftedClock):
        services.clock.offset += by
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE jobs SET locked_until = locked_until - make_interval(secs => :s), "
                "run_at = run_at - make_interval(secs => :s) WHERE status::text = 'PENDING'"
            ),
            {"s": by.total_seconds()},
        )


async def run_steps(world: World, count: int) -> None:
    for _ in range(count):
        step = world.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if step == "refill":
            await _refill(world, world.rng.randrange(len(world.buyers)))
        else:
            await ACTIONS[step](world)


async def heal(world: World, http: httpx.AsyncClient, rounds: int = 8) -> None:
    """Razorpay is healthy again and the bank settles every refund: work until nothing moves."""
    world.razorpay.clear_faults()
    for n in range(rounds):
        await wait_in_flight(world.razorpay)
        for delivery in world.pending:
            await world.razorpay.deliver_async(delivery, client=http)
        world.pending.clear()
        await pass_time(world.services, jobs.LEASE + timedelta(seconds=1))
        await make_due(world.services)
        await run_once(world.services)
        await _reconcile(world)
        for refund in list(world.razorpay.refunds.values()):
            if refund["status"] == "pending":
                world.pending.extend(world.razorpay.process_refund(refund["id"]))
        async with world.services.engine.connect() as conn:
            busy = await conn.scalar(
                text(
                    "SELECT (SELECT count(*) FROM jobs WHERE status::text = 'PENDING' "
                    "AND kind <> :r) + (SELECT count(*) FROM refunds "
                    "WHERE status::text = 'INITIATED')"
                ),
                {"r": jobs.RECONCILE},
            )
        if not busy and not world.pending:
            world.log.append(f"quiescent after {n + 1} healing rounds")
            return
    world.log.append(f"not quiescent after {rounds} healing rounds")


async def wait_in_flight(razorpay: RazorpaySimulator) -> None:
    """A "slow" answer still holds its idempotency key at the fake: wait for that condition
    (bounded), not for a guessed time, so healing never meets a 409 of our own making."""
    for _ in range(100):
        with razorpay._lock:
            busy = any(not k.done for k in razorpay._idempotency.values())
        if not busy:
            return
        await asyncio.sleep(0.02)
