"""Engine and session factory; the caller of an operation owns its transaction.

Everything here works unchanged behind PgBouncer in transaction mode, where consecutive
transactions of one client connection may run on different server connections:
- no startup parameters beyond `application_name` (PgBouncer refuses any it does not track, such
  as `lock_timeout`); per-transaction settings are `SET LOCAL`, issued when each transaction begins;
- with `pooler="pgbouncer"`, no statement cache and a unique name for every prepared statement,
  as SQLAlchemy's asyncpg notes describe ("Prepared Statement Name with PGBouncer"): a name cached
  on one server connection means nothing on the next, and two clients sharing a server connection
  must never pick the same name.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

Sessions = async_sessionmaker[AsyncSession]
Pooler = Literal["pgbouncer"]

# A statement that waits on a lock longer than this is a bug or an overload: fail it.
LOCK_TIMEOUT = "15s"


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def connect_args(pooler: Pooler | None) -> dict[str, Any]:
    """asyncpg connect arguments: only what a transaction-mode pooler passes through."""
    args: dict[str, Any] = {"server_settings": {"application_name": "joycart"}}
    if pooler == "pgbouncer":
        args |= {
            "statement_cache_size": 0,  # asyncpg's own cache of named statements
            "prepared_statement_cache_size": 0,  # SQLAlchemy's dialect cache on top of it
            "prepared_statement_name_func": _unique_statement_name,
        }
    return args


def _set_local_timeouts(conn: Connection) -> None:
    # Runs as the first statement of every transaction (the "begin" event fires on autobegin
    # too); SET LOCAL lasts exactly as long as the transaction, so nothing outlives it on a
    # pooled server connection.
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def make_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, pooler: Pooler | None = None
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        connect_args=connect_args(pooler),
    )
    event.listen(engine.sync_engine, "begin", _set_local_timeouts)
    return engine


def make_sessions(bind: AsyncEngine | AsyncConnection) -> Sessions:
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on any exception."""
    async with sessions() as session, session.begin():
        yield session
