"""Migrations on an empty database of their own: head, base, head again; models match them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from joycart import migrate
from joycart.models import Base
from tests.conftest import _admin

MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture
async def empty_engine(server_url_base: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a brand-new database on the test server, dropped afterwards."""
    name = f"joycart_migrations_{uuid.uuid4().hex[:10]}"
    admin = await _admin(server_url_base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = make_url(server_url_base).set(drivername="postgresql+asyncpg", database=name)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()
        admin = await _admin(server_url_base)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names) - {"alembic_version"}


async def _differences(engine: AsyncEngine) -> list[Any]:
    # No warning filter: alembic's warning about an expression index it cannot compare fails
    # this test (warnings are errors) and says how to make the index comparable.
    def compare(sync: Connection) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def test_migrations_go_up_down_and_up_again(empty_engine: AsyncEngine) -> None:
    assert await _tables(empty_engine) == set()
    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == MODEL_TABLES
    await migrate.downgrade(empty_engine, "base")
    assert await _tables(empty_engine) == set()
    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == MODEL_TABLES


async def test_models_match_the_migrations(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    assert await _differences(empty_engine) == []
