"""One random fault schedule: buyers check out, pay, cancel units, while Razorpay fails, workers
crash, leases run out, webhooks arrive late, twice or out of order. Every choice comes from one
seeded `random.Random`, and every step is logged, so a seed replays its schedule."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import text

from joycart.resolvers import jobs
from joycart.worker import run_once
from tests.money.steps import (
    cancel,
    checkout,
    crashed_worker,
    deliver,
    expire,
    fault,
    lease_expiry,
    lease_lost_mid_call,
    outage,
    pay,
    race_expiry,
    reconcile_apply,
    refill,
    set_up,
    settle_refund,
    worker,
)
from tests.money.world import ShiftedClock, World, make_due, pass_time, wait_in_flight

__all__ = ["ShiftedClock", "World", "heal", "run_steps", "set_up", "wait_in_flight"]

WEIGHTS: dict[str, float] = {
    "checkout": 3, "refill": 1, "pay": 3, "deliver": 5, "cancel": 4, "fault": 3, "worker": 2,
    "crashed_worker": 1, "lease_expiry": 1, "expire": 1, "reconcile": 1, "settle_refund": 2,
    "race_expiry": 1, "outage": 0.3, "lease_lost_mid_call": 0.3,
}  # fmt: skip


ACTIONS = {
    "checkout": checkout,
    "pay": pay,
    "deliver": deliver,
    "cancel": cancel,
    "fault": fault,
    "worker": worker,
    "crashed_worker": crashed_worker,
    "lease_expiry": lease_expiry,
    "expire": expire,
    "reconcile": reconcile_apply,
    "settle_refund": settle_refund,
    "race_expiry": race_expiry,
    "outage": outage,
    "lease_lost_mid_call": lease_lost_mid_call,
}


async def run_steps(world: World, count: int) -> None:
    if world.rng.random() < 0.5:  # half the schedules start from a paid order: cancels bite
        await checkout(world)
        await pay(world)
        while world.pending:
            await deliver(world)
    for _ in range(count):
        step = world.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if step == "refill":
            await refill(world, world.rng.randrange(len(world.buyers)))
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
        await reconcile_apply(world)
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
