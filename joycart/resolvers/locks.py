"""Advisory locks that serialize calls to the outside world without holding row locks.

The lock is held at session level on one connection, and the short transactions before and
after the call run on that same connection: each caller uses one connection, so waiters can never
starve the holder of the pool. A crashed process drops its connection and with it the lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from joycart.db import Sessions, make_sessions


class LockBusy(Exception):
    """Another process is making this call right now; try again later."""


@asynccontextmanager
async def external_call_lock(
    sessions: Sessions, key: str, *, wait: bool
) -> AsyncIterator[Sessions]:
    """Yield a session factory on the locked connection; `wait=False` raises `LockBusy`."""
    engine = sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as conn:
        if wait:
            await conn.execute(text("SET LOCAL lock_timeout = '45s'"))
            await conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
            got = True
        else:
            got = bool(
                await conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key})
            )
        await conn.commit()
        if not got:
            raise LockBusy(key)
        try:
            yield make_sessions(conn)
        finally:
            if conn.in_transaction():
                await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
            await conn.commit()
