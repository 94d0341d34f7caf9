"""Call leases serialise gateway calls without session state: a busy lease is LockBusy for the
worker, a waiting caller holds no pooled connection, and a taken-over lease cannot write."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.db import make_engine, make_sessions
from joycart.resolvers.locks import LockBusy, external_call_lock


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
