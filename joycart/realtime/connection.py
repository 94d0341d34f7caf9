"""One socket's state: who signed in, until when, what it watches, and how it ends."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from joycart.models import User
from joycart.realtime.hub import Hub, Watch
from joycart.realtime.limits import SLOW_CONSUMER


class SocketConnection:
    def __init__(self, hub: Hub, *, client: str) -> None:
        self.hub = hub
        self.client = client  # the peer's address: anonymous sockets are counted by it
        self.user: User | None = None
        self.token: str | None = None
        self.expires_at: datetime | None = None
        self.account: str | None = None  # the key this socket is counted under, once admitted
        # Futures, not events: waiting on them costs no task of its own.
        loop = asyncio.get_running_loop()
        self.signed_in: asyncio.Future[None] = loop.create_future()  # `admit` was called
        self.ended: asyncio.Future[None] = loop.create_future()  # the socket must close (`end`)
        self.close_code = 1000
        self.close_reason = ""

    def admit(self, user: User | None, token: str | None, expires_at: datetime | None) -> None:
        """Count the socket for its account (or its address, when anonymous); may refuse."""
        account = f"user:{user.id}" if user is not None else f"anonymous:{self.client}"
        self.hub.admit(account)
        self.account = account
        self.user, self.token, self.expires_at = user, token, expires_at
        self.signed_in.set_result(None)

    def release(self) -> None:
        if self.account is not None:
            self.hub.release(self.account)
            self.account = None

    def end(self, code: int, reason: str) -> None:
        """Close the socket with this code (the first reason given wins)."""
        if not self.ended.done():
            self.close_code, self.close_reason = code, reason
            self.ended.set_result(None)

    def _slow(self) -> None:
        self.end(SLOW_CONSUMER, "Too many updates waiting: reconnect to catch up.")

    @contextlib.asynccontextmanager
    async def watch_order(self, order_id: uuid.UUID) -> AsyncIterator[Watch]:
        async with self.hub.watch_order(order_id, on_overflow=self._slow) as watch:
            yield watch

    @contextlib.asynccontextmanager
    async def watch_seller(self, seller_id: uuid.UUID) -> AsyncIterator[Watch]:
        async with self.hub.watch_seller(seller_id, on_overflow=self._slow) as watch:
            yield watch
