"""The context of one WebSocket: the signed-in caller, and fresh DataLoaders for every update.

A socket lives for minutes and sends many results, all executed with this one context. The
request context's DataLoaders would remember the first result's rows for the socket's whole
life, so each update runs with loaders of its own: `begin_update` before reading, `end_update`
when the result goes out. Both act on a context variable of the subscription's task, so the
subscriptions of one socket never share an update either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.models import User
from joycart.realtime.connection import SocketConnection
from joycart.schema.context import Context
from joycart.schema.loaders import Loaders


class _SharedReads:
    """All the reads of one update on one pooled connection, taking turns: one checkout per
    update however many DataLoaders it runs, and never more connections than read slots."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self._turn:
            if self._session is None:
                self._session = self._sessions()
            yield self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


@dataclass
class _Update:
    reads: _SharedReads
    loaders: Loaders
    slot: asyncio.Semaphore  # held from the first read until the message is handed over


_update: ContextVar[_Update | None] = ContextVar("joycart_socket_update", default=None)


@dataclass
class SocketContext(Context):
    connection: SocketConnection | None = None
    connection_params: dict[str, object] | None = None  # `connection_init`'s payload

    @property
    def _read_sessions(self) -> Sessions:
        return self.services.realtime.read_sessions

    @property
    def loaders(self) -> Loaders:
        update = _update.get()
        return update.loaders if update is not None else Loaders(self._read_sessions)

    async def begin_update(self) -> None:
        """Before reading an update: wait for one of the process's read slots (a burst of
        wake-ups queues here, not in the connection pool), then fresh DataLoaders over one
        shared session."""
        await self.end_update()
        slots = self.services.realtime.read_slots
        await slots.acquire()
        reads = _SharedReads(self._read_sessions)
        _update.set(_Update(reads, Loaders(reads), slots))

    async def end_update(self) -> None:
        """The update's message is complete (or abandoned): give its connection back, free
        its slot, forget its rows. The socket calls this just before it sends a result, in
        the subscription's task."""
        update = _update.get()
        if update is None:
            return
        _update.set(None)
        try:
            await update.reads.close()
        finally:
            update.slot.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read of committed rows (no transaction: each statement sees the latest), on the
        update's shared session when one is under way."""
        update = _update.get()
        source = update.reads if update is not None else self._read_sessions
        async with source() as session:
            yield session

    @property
    def client_ip(self) -> str:
        return self.connection.client if self.connection is not None else "local"

    async def user(self) -> User | None:
        """The account that signed in at `connection_init`, or None (anonymous)."""
        return self.connection.user if self.connection is not None else None
