"""A worker that stops hands back the jobs it claimed and did not run; never someone else's."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.resolvers import jobs
from joycart.worker import run_due_jobs


async def _enqueue(services: Services, n: int) -> None:
    async with services.sessions() as session, session.begin():
        for i in range(n):
            await jobs.enqueue(
                session, jobs.DELETE_IMAGE, {"store": "LOCAL", "key": f"k{i}"}, delay=timedelta(0)
            )


async def test_a_stopping_worker_hands_back_what_it_claimed_and_did_not_run(
    services: Services,
) -> None:
    await _enqueue(services, 3)
    stop = asyncio.Event()
    stop.set()
    stats = await run_due_jobs(services, stop=stop)
    assert (stats.jobs_done, stats.jobs_retried) == (0, 0)
    async with services.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT status, locked_until, attempts FROM jobs"))).all()
    assert [tuple(r) for r in rows] == [("PENDING", None, 0)] * 3
    async with services.sessions() as session, session.begin():
        assert len(await jobs.claim(session, limit=10)) == 3  # due again at once


async def test_a_lease_taken_over_by_another_worker_is_not_released(services: Services) -> None:
    await _enqueue(services, 1)
    async with services.sessions() as session, session.begin():
        (mine,) = await jobs.claim(session)
    async with services.engine.begin() as conn:  # ours ran out; another worker claimed it
        await conn.execute(
            text(
                "UPDATE jobs SET locked_until = now() + interval '2 minutes', "
                "lease_token = gen_random_uuid()"
            )
        )
    async with services.sessions() as session, session.begin():
        assert await jobs.release(session, [mine]) == 0
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT locked_until IS NOT NULL FROM jobs"))
