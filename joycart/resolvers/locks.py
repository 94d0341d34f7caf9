"""Call leases: one caller at a time makes a given external call, without session state.

A lease row (key, token, expiry) is taken in a short transaction; no connection is held during
the gateway call or while waiting, so it works behind PgBouncer transaction pooling and cannot
drain the pool. The caller writes the call's result only while `Lease.confirm` finds the lease
still its own; an expired lease (a crashed or stalled caller) can be taken over.

On a hot path the lease need not cost transactions of its own: `external_call_lock_with` runs
the caller's first step in the transaction that takes it, and `Lease.release_in` ends it in the
transaction that writes the result.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.errors import GatewayUnavailable
from joycart.models import CallLease

# Longer than any gateway call (its timeout plus a look-up), so a live caller keeps its lease.
LEASE_SECONDS = 120
WAIT_SECONDS = 45.0

T = TypeVar("T")


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


@dataclass
class Lease:
    key: str
    token: uuid.UUID
    sessions: Sessions
    released: bool = False  # by `release_in`, in the transaction that wrote the call's result

    async def confirm(self, session: AsyncSession) -> None:
        """Inside the result's transaction: raise `LockBusy` unless the lease is still ours."""
        conn = await session.connection()
        token = await conn.scalar(_HOLDER, {"key": self.key})
        if token != self.token:
            raise LockBusy(f"The call lease {self.key} was taken over; the call will be retried.")

    async def release_in(self, session: AsyncSession) -> None:
        """Last in the result's transaction (after `confirm`): the lease ends when the result
        commits, with no transaction of its own. If that transaction fails, the error passes
        through the lock's exit, which releases the lease as always."""
        conn = await session.connection()
        await conn.execute(_RELEASE, {"key": self.key, "token": self.token})
        self.released = True


async def _nothing(session: AsyncSession) -> None:
    return None


@asynccontextmanager
async def external_call_lock(sessions: Sessions, key: str, *, wait: bool) -> AsyncIterator[Lease]:
    """Hold the call lease for `key`; `wait=False` raises `LockBusy` at once if it is taken."""
    async with external_call_lock_with(sessions, key, wait=wait, first=_nothing) as (lease, _):
        yield lease


@asynccontextmanager
async def external_call_lock_with(
    sessions: Sessions, key: str, *, wait: bool, first: Callable[[AsyncSession], Awaitable[T]]
) -> AsyncIterator[tuple[Lease, T]]:
    """`external_call_lock`, with `first` run in the transaction that takes the lease, after it
    is taken (its result is yielded beside the lease): the caller's first step costs no
    transaction of its own, and it never runs, nor commits, without the lease."""
    token = uuid.uuid4()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        async with sessions() as session, session.begin():
            conn = await session.connection()
            if await conn.scalar(_TAKE, {"key": key, "token": token}) == token:
                lease, result = Lease(key, token, sessions), await first(session)
                break
        if not wait or time.monotonic() > deadline:
            raise LockBusy("Another request is talking to Razorpay about this; try again shortly.")
        await asyncio.sleep(0.05)  # no connection is held while waiting
    failed = True
    try:
        yield lease, result
        failed = False
    finally:
        if failed or not lease.released:
            async with sessions() as session, session.begin():
                conn = await session.connection()
                await conn.execute(_RELEASE, {"key": key, "token": token})
