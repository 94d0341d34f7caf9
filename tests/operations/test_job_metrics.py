"""The job gauges read from PostgreSQL: DEAD jobs are counted, a job running under a live lease
is not "behind", and one whose lease ran out is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.observability.database import read_snapshot
from joycart.resolvers import jobs


async def test_job_gauges_count_dead_jobs_and_skip_jobs_running_under_a_lease(
    services: Services,
) -> None:
    async with services.sessions() as session, session.begin():
        for key in ("a", "b"):
            await jobs.enqueue(
                session, jobs.DELETE_IMAGE, {"store": "LOCAL", "key": key}, delay=timedelta(0)
            )
    async with services.engine.begin() as conn:
        await conn.execute(text("UPDATE jobs SET run_at = now() - interval '20 minutes'"))
        await conn.execute(text("UPDATE jobs SET status = 'DEAD' WHERE id = 2"))
    async with services.sessions() as session, session.begin():
        (running,) = await jobs.claim(session, now=datetime.now(UTC))

    snap = await read_snapshot(services.engine)
    assert snap.jobs[("delete_image", "DEAD")] == 1
    assert snap.oldest_due_job_age == 0.0  # the only due job is running under its lease

    async with services.engine.begin() as conn:  # its worker died: the lease ran out
        await conn.execute(text("UPDATE jobs SET locked_until = now() - interval '1 second'"))
    snap = await read_snapshot(services.engine)
    assert snap.oldest_due_job_age >= 20 * 60
    assert running.id == 1
