"""The context of one WebSocket: the signed-in caller, and fresh DataLoaders for every update.

A socket lives for minutes and sends many results, all executed with this one context. The
request context's DataLoaders would remember the first result's rows for the socket's whole
life, so each update runs with loaders of its own (`fresh_loaders`, kept in a context variable
of the subscription's task: subscriptions of one socket never share them either).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from joycart.models import User
from joycart.realtime.connection import SocketConnection
from joycart.schema.context import Context
from joycart.schema.loaders import Loaders

_update_loaders: ContextVar[Loaders | None] = ContextVar("joycart_update_loaders", default=None)


@dataclass
class SocketContext(Context):
    connection: SocketConnection | None = None
    connection_params: dict[str, object] | None = None  # `connection_init`'s payload

    @property
    def loaders(self) -> Loaders:
        loaders = _update_loaders.get()
        if loaders is None:
            loaders = self.fresh_loaders()
        return loaders

    def fresh_loaders(self) -> Loaders:
        """New DataLoaders for the result about to be sent (call before each `yield`)."""
        loaders = Loaders(self.services.sessions)
        _update_loaders.set(loaders)
        return loaders

    @property
    def client_ip(self) -> str:
        return self.connection.client if self.connection is not None else "local"

    async def user(self) -> User | None:
        """The account that signed in at `connection_init`, or None (anonymous)."""
        return self.connection.user if self.connection is not None else None
