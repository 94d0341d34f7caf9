"""Engine and session factory; the caller of an operation owns its transaction.

Everything here works unchanged behind PgBouncer in transaction mode, where consecutive
transactions of one client connection may run on different server connections:
- no startup parameters beyond `application_name` (PgBouncer refuses any it does not track, such
  as `lock_timeout`); per-transaction settings are `SET LOCAL`, sent with each transaction's BEGIN;
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

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
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
SET_LOCAL_TIMEOUTS = f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';"


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


class TimedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """An asyncpg connection whose every transaction starts with the lock timeout set.

    The `SET LOCAL` rides in the same simple-query message as the `BEGIN` (asyncpg's
    `Transaction.start` sends it through `execute` without arguments), so it costs no round trip
    of its own, and it lasts exactly as long as the transaction: nothing outlives it on a pooled
    server connection.
    """

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's
    ) -> str:
        if not args and query.startswith("BEGIN"):
            query = f"{query} {SET_LOCAL_TIMEOUTS}"
        result: str = await super().execute(query, *args, timeout=timeout)
        return result


def connect_args(pooler: Pooler | None) -> dict[str, Any]:
    """asyncpg connect arguments: only what a transaction-mode pooler passes through."""
    args: dict[str, Any] = {
        "server_settings": {"application_name": "joycart"},
        "connection_class": TimedConnection,
    }
    if pooler == "pgbouncer":
        args |= {
            "statement_cache_size": 0,  # asyncpg's own cache of named statements
            "prepared_statement_cache_size": 0,  # SQLAlchemy's dialect cache on top of it
            "prepared_statement_name_func": _unique_statement_name,
        }
    return args


def _discard_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # Instead of `pool_pre_ping`, whose asyncpg ping is three round trips (BEGIN, ";", ROLLBACK)
    # on every checkout: asyncpg marks a connection closed as soon as the server ends it (a
    # restart, an idle kill), so a local look catches the stale ones for free, and the pool
    # retries with a fresh connection. A connection lost mid-use is still invalidated by
    # SQLAlchemy's disconnect handling.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def make_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, pooler: Pooler | None = None
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args=connect_args(pooler),
    )
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed)
    return engine


def make_sessions(bind: AsyncEngine | AsyncConnection) -> Sessions:
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on any exception."""
    async with sessions() as session, session.begin():
        yield session
