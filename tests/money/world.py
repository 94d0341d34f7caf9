"""The world a fault schedule acts on, its seeded choices and log, and the test's hold on
time (an injected clock plus the database's own timestamps) and on the fake's in-flight calls."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator, WebhookDelivery
from tests.helpers import Account, Api

CANCEL = """mutation($id: ID!, $q: Int) { cancelItem(orderItemId: $id, quantity: $q, reason: "x") {
    orderItem { id } errors { code } } }"""
PRICES = (10_000, 25_000, 40_000)
REFUND_CALL = ("POST", "/v1/payments/")  # POST /v1/payments/{id}/refund
ORDER_CALL = ("POST", "/v1/orders")
# Faults of the fake; "slow" answers after SLOW_DELAY, beyond the test's gateway timeout, and
# holds the idempotency key meanwhile, so a retry in that window gets Razorpay's 409.
FAULTS = ("500", "html502", "slow", "drop_after_acting", "drop_before_acting", "409", "429")
SLOW_DELAY = 0.45
# Step kinds and their weights (a paid order needs checkout, pay and deliveries before cancels).


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


async def wait_in_flight(razorpay: RazorpaySimulator) -> None:
    """A "slow" answer still holds its idempotency key at the fake: wait for that condition
    (bounded), not for a guessed time, so healing never meets a 409 of our own making."""
    for _ in range(100):
        with razorpay._lock:
            busy = any(not k.done for k in razorpay._idempotency.values())
        if not busy:
            return
        await asyncio.sleep(0.02)
