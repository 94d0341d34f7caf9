"""Fixtures of the fault schedules: a short gateway timeout (so "slow" is a timeout and cheap),
a movable clock, and a reset of database and fake between schedules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.razorpay import RazorpayGateway
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import Base
from tests.money.schedule import ShiftedClock, wait_in_flight

GATEWAY_TIMEOUT = 0.3


@pytest.fixture
def schedule_count(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--schedules"))


@pytest.fixture
def schedule_seed(request: pytest.FixtureRequest) -> int | None:
    seed = request.config.getoption("--schedule-seed")
    return None if seed is None else int(seed)


@pytest.fixture
def fast_gateway(services: Services) -> Iterator[None]:
    gateway = services.gateway
    assert isinstance(gateway, RazorpayGateway)
    before = gateway._timeout
    gateway._timeout = GATEWAY_TIMEOUT
    yield
    gateway._timeout = before


@pytest.fixture
async def fresh_world(
    services: Services, razorpay: RazorpaySimulator, fast_gateway: None
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """`await fresh()` empties every table and the fake, and sets the clock back to now."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    before = services.clock

    async def fresh() -> None:
        await wait_in_flight(razorpay)
        razorpay.reset()
        services.clock = ShiftedClock()
        async with services.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    yield fresh
    services.clock = before
