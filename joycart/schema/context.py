"""The per-request context: services, the caller (loaded once, lazily) and the DataLoaders."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
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


@dataclass
class Context:
    request: Request | None
    response: Response | None
    services: Services
    # The id the HTTP middleware bound (and returns as X-Request-Id), so a masked error names it.
    request_id: str = field(default_factory=lambda: logs.current("request_id") or uuid.uuid4().hex)
    _user_task: asyncio.Task[User | None] | None = None
    _loaders: Loaders | None = None

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            from joycart.schema.loaders import Loaders

            self._loaders = Loaders(self.services.sessions)
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

    async def require_user(self, role: Role | None = None) -> User:
        user = await self.user()
        if user is None:
            raise Unauthenticated()
        if role is not None and user.role is not role:
            raise Forbidden(f"Only a {role.value.lower()} account can do this.")
        return user

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short session of its own: sibling query fields resolve concurrently."""
        async with self.services.sessions() as session:
            yield session

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self.services.sessions)
