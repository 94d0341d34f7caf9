"""The per-request context: services, the caller (loaded once, lazily) and the DataLoaders.

Reads open short sessions of their own (sibling fields resolve concurrently), through
`ReadGate`: a request holds at most `PER_REQUEST` pooled connections at once, and all GraphQL
reads of a process together leave `RESERVED` connections of the pool free, so a heavy query
queues behind itself instead of draining the pool that readiness, mutations and the worker
need. Never open a read while holding one (the cap would make that wait on itself).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from joycart.bootstrap import Services
from joycart.db import transaction
from joycart.errors import Forbidden, Unauthenticated
from joycart.models import Role, User
from joycart.observability import logs
from joycart.resolvers import auth

if TYPE_CHECKING:
    from joycart.schema.loaders import Loaders
    from joycart.schema.viewer import Viewer

PER_REQUEST = 2
RESERVED = 3
_DEFAULT_CAPACITY = 15  # an engine without a sized pool (NullPool): assume the default 5 + 10


def read_slots(engine: AsyncEngine) -> int:
    """How many connections GraphQL reads of this process may hold together."""
    pool = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", None)
    if callable(size) and isinstance(overflow, int):
        capacity = int(size()) + max(overflow, 0)
    else:
        capacity = _DEFAULT_CAPACITY
    return max(1, capacity - min(RESERVED, capacity // 2))


_process_slots: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def process_slots(engine: AsyncEngine) -> asyncio.Semaphore:
    """The per-process (per-engine) semaphore of GraphQL read connections."""
    slots = _process_slots.get(engine)
    if slots is None:
        slots = _process_slots[engine] = asyncio.Semaphore(read_slots(engine))
    return slots


@dataclass
class Context:
    request: Request | None
    response: Response | None
    services: Services
    # The id the HTTP middleware bound (and returns as X-Request-Id), so a masked error names it.
    request_id: str = field(default_factory=lambda: logs.current("request_id") or uuid.uuid4().hex)
    _user_task: asyncio.Task[User | None] | None = None
    _loaders: Loaders | None = None
    _request_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(PER_REQUEST)
    )

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            from joycart.schema.loaders import Loaders

            self._loaders = Loaders(self.read)
        return self._loaders

    @property
    def client_ip(self) -> str:
        if self.request is None or self.request.client is None:
            return "local"
        return self.request.client.host

    def _bearer(self) -> str | None:
        if self.request is None:
            return None
        header = self.request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Send the access token as `Authorization: Bearer <token>`.")
        return token.strip()

    async def _load_user(self) -> User | None:
        token = self._bearer()
        if token is None:
            return None
        async with self.read() as session:
            return await auth.user_for_token(
                session, token=token, jwt_secret=self.services.settings.jwt_secret or ""
            )

    async def user(self) -> User | None:
        """The caller, or None when anonymous; a bad token raises `Unauthenticated`."""
        if self._user_task is None:
            self._user_task = asyncio.ensure_future(self._load_user())
        user = await asyncio.shield(self._user_task)
        if user is not None:
            logs.bind(user_id=user.id)
        return user

    async def viewer(self) -> Viewer:
        """Who the objects of this request are built for; a bad token raises `Unauthenticated`."""
        from joycart.schema.viewer import Viewer

        return Viewer.of(await self.user())

    async def public_viewer(self) -> Viewer:
        """The viewer for public reads (the catalog): a bad token reads as anonymous there."""
        from joycart.schema.viewer import ANONYMOUS

        try:
            return await self.viewer()
        except Unauthenticated:
            return ANONYMOUS

    async def require_user(self, role: Role | None = None) -> User:
        user = await self.user()
        if user is None:
            raise Unauthenticated()
        if role is not None and user.role is not role:
            raise Forbidden(f"Only a {role.value.lower()} account can do this.")
        return user

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short session of its own (sibling query fields resolve concurrently), opened when
        this request and this process are under their connection caps (see the module doc)."""
        async with (
            self._request_slots,
            process_slots(self.services.engine),
            self.services.sessions() as session,
        ):
            yield session

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self.services.sessions)
