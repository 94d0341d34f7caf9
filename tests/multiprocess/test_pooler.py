"""The engine works behind PgBouncer in transaction mode: no startup parameter it refuses, settings
that last one transaction, no statement cache and unique prepared-statement names."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from joycart.db import TimedConnection, connect_args, make_engine, make_sessions, transaction
from joycart.models import Job, JobStatus
from tests.multiprocess.conftest import NO_PGBOUNCER
from tests.multiprocess.harness import DEPLOY_INI, PgBouncer
from tests.multiprocess.session_state import session_state_in_code


def test_the_only_startup_parameter_is_one_pgbouncer_passes_on() -> None:
    assert connect_args(None) == {
        "server_settings": {"application_name": "joycart"},
        "connection_class": TimedConnection,  # a client-side class: nothing sent at startup
    }
    pooled = connect_args("pgbouncer")
    assert pooled["server_settings"] == {"application_name": "joycart"}
    assert pooled["statement_cache_size"] == 0
    assert pooled["prepared_statement_cache_size"] == 0
    names = {pooled["prepared_statement_name_func"]() for _ in range(100)}
    assert len(names) == 100


async def test_lock_timeout_lasts_exactly_one_transaction(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SHOW lock_timeout")) == "15s"
            await conn.commit()
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            # Between transactions the server connection is back to its defaults: nothing a
            # pooler could hand to another client.
            assert await driver.fetchval("SHOW lock_timeout") == "0"
    finally:
        await engine.dispose()


async def test_many_transactions_through_pgbouncer_in_transaction_mode(
    pgbouncer: PgBouncer | None,
) -> None:
    bouncer = pgbouncer
    if bouncer is None:
        pytest.skip(NO_PGBOUNCER)
    engine = make_engine(bouncer.url, pool_size=10, max_overflow=10, pooler="pgbouncer")
    sessions = make_sessions(engine)
    marker = uuid.uuid4().hex

    async def one(n: int) -> int:
        async with transaction(sessions) as session:
            assert await session.scalar(text("SHOW lock_timeout")) == "15s"
            session.add(
                Job(
                    kind="ops_test",
                    payload={"n": n},
                    dedupe_key=f"{marker}:{n}",
                    status=JobStatus.PENDING,
                    run_at=await session.scalar(text("SELECT now() + interval '1 day'")),
                    attempts=0,
                )
            )
            await session.flush()
            found = await session.scalar(
                text("SELECT count(*) FROM jobs WHERE dedupe_key LIKE :m"), {"m": f"{marker}:%"}
            )
            assert found is not None
            return int(found)

    try:
        seen = await asyncio.gather(*(one(n) for n in range(60)))
        assert min(seen) >= 1
        async with engine.connect() as conn:
            total = await conn.scalar(
                text("SELECT count(*) FROM jobs WHERE dedupe_key LIKE :m"), {"m": f"{marker}:%"}
            )
        assert total == 60
        assert "unsupported startup parameter" not in bouncer.log_text()
    finally:
        await engine.dispose()


def test_no_code_keeps_session_state_that_transaction_pooling_loses() -> None:
    assert session_state_in_code() == []


def test_the_readme_shows_the_pgbouncer_ini_the_tests_run() -> None:
    readme = (DEPLOY_INI.parents[1] / "README.md").read_text()
    assert f"```ini\n{DEPLOY_INI.read_text()}```" in readme
