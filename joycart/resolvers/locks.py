"""Call leases: one caller at a time makes a given external call, without session state.

A lease row (key, token, expiry) is taken in a short transaction; no connection is held during
the gateway call or while waiting, so it works behind PgBouncer transaction pooling and cannot
drain the pool. The caller writes the call's result only while `Lease.confirm` finds the lease
still its own; an expired lease (a crashed or stalled caller) can be taken over.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.errors import GatewayUnavailable
from joycart.models import CallLease

# Longer than any gateway call (its timeout plus a look-up), so a live caller keeps its lease.
LEASE_SECONDS = 120
WAIT_SECONDS = 45.0


# Built once (every checkout takes, confirms and releases a lease).
_EXPIRES = func.now() + text(f"interval '{LEASE_SECONDS} seconds'")
_TAKE = (
    insert(CallLease)
    .values(key=bindparam("key"), token=bindparam("token"), expires_at=_EXPIRES)
    .on_conflict_do_update(
        index_elements=[CallLease.key],
        set_={"token": bindparam("token"), "expires_at": _EXPIRES},
        where=CallLease.expires_at < func.now(),
    )
    .returning(CallLease.token)
)
_HOLDER = select(CallLease.token).where(CallLease.key == bindparam("key")).with_for_update()
_RELEASE = delete(CallLease).where(
    CallLease.key == bindparam("key"), CallLease.token == bindparam("token")
)


class LockBusy(GatewayUnavailable):
    """Another caller is making this call right now; try again later."""


@dataclass(frozen=True)
class Lease:
    key: str
    token: uuid.UUID
    sessions: Sessions

    async def confirm(self, session: AsyncSession) -> None:
        """Inside the result's transaction: raise `LockBusy` unless the lease is still ours."""
        conn = await session.connection()
        token = await conn.scalar(_HOLDER, {"key": self.key})
        if token != self.token:
            raise LockBusy(f"The call lease {self.key} was taken over; the call will be retried.")


async def _take(sessions: Sessions, key: str, token: uuid.UUID) -> bool:
    async with sessions() as session, session.begin():
        conn = await session.connection()
        taken: uuid.UUID | None = await conn.scalar(_TAKE, {"key": key, "token": token})
    return taken == token


@asynccontextmanager
async def external_call_lock(sessions: Sessions, key: str, *, wait: bool) -> AsyncIterator[Lease]:
    """Hold the call lease for `key`; `wait=False` raises `LockBusy` at once if it is taken."""
    token = uuid.uuid4()
    deadline = time.monotonic() + WAIT_SECONDS
    while not await _take(sessions, key, token):
        if not wait or time.monotonic() > deadline:
            raise LockBusy("Another request is talking to Razorpay about this; try again shortly.")
        await asyncio.sleep(0.05)  # no connection is held while waiting
    try:
        yield Lease(key, token, sessions)
    finally:
        async with sessions() as session, session.begin():
            conn = await session.connection()
            await conn.execute(_RELEASE, {"key": key, "token": token})
