"""`joycart jobs`: operators list, show and retry jobs; `retry --dead` brings back DEAD jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from joycart import cli_jobs
from joycart.bootstrap import Services
from joycart.resolvers import jobs


async def _jobs(services: Services) -> None:
    async with services.sessions() as session, session.begin():
        for key in ("a", "b", "c"):
            await jobs.enqueue(
                session, jobs.DELETE_IMAGE, {"store": "LOCAL", "key": key}, dedupe_key=f"del:{key}"
            )
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE jobs SET status = 'DEAD', attempts = 40, last_error = 'HTTP 503', "
                "first_attempt_at = now() - interval '25 hours', last_attempt_at = now() "
                "WHERE id IN (1, 2)"
            )
        )


async def _cli(services: Services, *argv: str) -> tuple[int, str]:
    return await cli_jobs.run(
        services.sessions, cli_jobs.parse(["jobs", *argv]), now=datetime.now(UTC)
    )


async def test_list_and_show_give_state_kind_attempts_and_the_last_error(
    services: Services,
) -> None:
    await _jobs(services)

    code, listed = await _cli(services, "list", "--state", "dead")
    assert code == 0
    rows = listed.splitlines()[1:]
    assert [row.split()[:4] for row in rows] == [
        ["2", "DEAD", "delete_image", "40"],
        ["1", "DEAD", "delete_image", "40"],
    ]
    assert all(row.endswith("HTTP 503") for row in rows)
    code, shown = await _cli(services, "show", "1")
    assert code == 0
    assert 'payload: {"key": "a", "store": "LOCAL"}' in shown
    assert "attempts: 40" in shown
    assert "last error: HTTP 503" in shown
    assert (await _cli(services, "show", "99"))[0] == 1


async def test_retry_makes_one_job_or_every_dead_job_due_now_with_attempts_reset(
    services: Services,
) -> None:
    await _jobs(services)

    assert await _cli(services, "retry", "1") == (0, "job 1 due again now (attempts reset)")
    async with services.sessions() as session, session.begin():
        (claimed,) = await jobs.claim(session, now=datetime.now(UTC) + timedelta(seconds=1))
    assert (claimed.id, claimed.attempts) == (1, 1)
    assert await _cli(services, "retry", "--dead") == (0, "1 DEAD job(s) due again now")

    async with services.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, status, attempts FROM jobs ORDER BY id"))).all()
    assert [tuple(r) for r in rows] == [(1, "PENDING", 1), (2, "PENDING", 0), (3, "PENDING", 0)]


async def test_a_dead_job_whose_work_is_owed_again_is_not_retried_twice(
    services: Services,
) -> None:
    await _jobs(services)
    async with services.sessions() as session, session.begin():  # reconciliation owed it again
        await jobs.enqueue(
            session, jobs.DELETE_IMAGE, {"store": "LOCAL", "key": "a"}, dedupe_key="del:a"
        )

    code, output = await _cli(services, "retry", "1")

    assert code == 1
    assert "newer pending job" in output


def test_retry_needs_an_id_or_dead() -> None:
    with pytest.raises(SystemExit):
        cli_jobs.parse(["jobs", "retry"])
