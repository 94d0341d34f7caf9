"""Call leases serialise gateway calls without session state: a busy lease is LockBusy for the
worker, a waiting caller holds no pooled connection, and a taken-over lease cannot write."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.bootstrap import Services
from joycart.db import make_engine, make_sessions
from joycart.resolvers.locks import LockBusy, external_call_lock, external_call_lock_with


async def test_a_busy_lease_is_lock_busy_for_a_caller_that_does_not_wait(
    services: Services,
) -> None:
    async with external_call_lock(services.sessions, "refund:busy", wait=False):
        with pytest.raises(LockBusy):
            async with external_call_lock(services.sessions, "refund:busy", wait=False):
                pass
    async with external_call_lock(services.sessions, "refund:busy", wait=False):
        pass  # released at the end of the first holder's block


async def test_a_waiting_caller_holds_no_connection_from_a_one_connection_pool(
    services: Services, database_url: str
) -> None:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    sessions = make_sessions(engine)
    try:
        order: list[str] = []
        async with external_call_lock(sessions, "gateway-order:one", wait=True):
            waiter_started = asyncio.Event()

            async def waiter() -> None:
                waiter_started.set()
                async with external_call_lock(sessions, "gateway-order:one", wait=True):
                    order.append("waiter")

            task = asyncio.create_task(waiter())
            await waiter_started.wait()
            for _ in range(5):  # the holder keeps using the only connection while the waiter waits
                async with sessions() as session, session.begin():
                    assert await session.scalar(text("SELECT 1")) == 1
            assert not task.done()
            order.append("holder")
        await asyncio.wait_for(task, timeout=10)
        assert order == ["holder", "waiter"]
    finally:
        await engine.dispose()


async def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_write(
    services: Services,
) -> None:
    async with external_call_lock(services.sessions, "refund:stalled", wait=False) as stalled:
        async with services.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE call_leases SET expires_at = now() - interval '1 second'")
            )
        async with (
            external_call_lock(services.sessions, "refund:stalled", wait=False) as taker,
            services.sessions() as session,
            session.begin(),
        ):
            await taker.confirm(session)
            with pytest.raises(LockBusy):
                await stalled.confirm(session)


async def _leases(services: Services) -> int:
    async with services.engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM call_leases")) or 0)


async def test_a_first_step_runs_only_once_the_lease_is_taken_and_commits_with_it(
    services: Services,
) -> None:
    ran: list[str] = []

    async def first(session: AsyncSession) -> str:
        ran.append("first")
        held = await session.scalar(text("SELECT count(*) FROM call_leases WHERE key = 'k:1'"))
        return f"leases held: {held}"

    async with external_call_lock(services.sessions, "k:1", wait=False):
        with pytest.raises(LockBusy):
            async with external_call_lock_with(services.sessions, "k:1", wait=False, first=first):
                pass
    assert ran == []  # busy: the first step never ran
    async with external_call_lock_with(services.sessions, "k:1", wait=False, first=first) as (
        _,
        result,
    ):
        assert await _leases(services) == 1  # committed with the first step
    assert (ran, result) == (["first"], "leases held: 1")
    assert await _leases(services) == 0


async def test_a_lease_released_in_a_result_that_rolls_back_is_still_released_on_exit(
    services: Services,
) -> None:
    async def result_fails_after_the_release() -> None:
        async with (
            external_call_lock(services.sessions, "k:2", wait=False) as lease,
            services.sessions() as session,
            session.begin(),
        ):
            await lease.confirm(session)
            await lease.release_in(session)
            raise RuntimeError("the result's transaction fails after the release")

    with pytest.raises(RuntimeError):
        await result_fails_after_the_release()
    assert await _leases(services) == 0
    async with external_call_lock(services.sessions, "k:2", wait=False) as lease:
        async with services.sessions() as session, session.begin():
            await lease.confirm(session)
            await lease.release_in(session)
        assert await _leases(services) == 0  # ended with the result's commit
