"""A small graphql-transport-ws client over the `websockets` package, for tests and the bench."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
Message = dict[str, Any]


async def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until `condition()` holds (the server finishes its side of a close on its own time)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the server exposes no event for these
            await asyncio.sleep(0.01)


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1).rstrip("/") + "/graphql"


def bearer(token: str) -> Mapping[str, object]:
    return {"Authorization": f"Bearer {token}"}


class GqlSocket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.server_pings = 0
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, http_url: str, init: Mapping[str, object] | None = None, **options: Any
    ) -> AsyncIterator[GqlSocket]:
        """Open a socket; with `init`, send `connection_init` and expect `connection_ack`."""
        async with connect(
            ws_url(http_url), subprotocols=[PROTOCOL], open_timeout=30, **options
        ) as ws:
            sock = cls(ws)
            if init is not None:
                await sock.init(init)
                ack = await sock.next()
                assert ack == {"type": "connection_ack"}, ack
            yield sock

    async def send(self, message: Message) -> None:
        await self.ws.send(json.dumps(message))

    async def init(self, payload: Mapping[str, object]) -> None:
        await self.send({"type": "connection_init", "payload": payload})

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})
        return op_id

    async def next(self, within: float = 30.0) -> Message:
        """The next message that is not the server's keep-alive ping (answered with a pong)."""
        async with asyncio.timeout(within):
            while True:
                raw = await self.ws.recv()
                assert isinstance(raw, str), "graphql-transport-ws messages are text frames"
                message: Message = json.loads(raw)
                if message.get("type") == "ping":
                    self.server_pings += 1
                    await self.send({"type": "pong"})
                    continue
                return message

    async def data(self, op_id: str, within: float = 30.0) -> dict[str, Any]:
        """The data of the next `next` message, which must be for `op_id` and carry no errors."""
        message = await self.next(within)
        assert message.get("id") == op_id, message
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def until(
        self, op_id: str, done: Callable[[dict[str, Any]], bool], within: float = 30.0
    ) -> list[dict[str, Any]]:
        """Data messages for `op_id` up to the first that satisfies `done` (all of them)."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(within):
            while not seen or not done(seen[-1]):
                seen.append(await self.data(op_id, within))
        return seen

    async def barrier(self, within: float = 30.0) -> list[Message]:
        """Ping and wait for the pong; returns what the server sent before it (in order)."""
        await self.send({"type": "ping"})
        before: list[Message] = []
        while True:
            message = await self.next(within)
            if message.get("type") == "pong":
                return before
            before.append(message)

    async def closed(self, within: float = 30.0) -> tuple[int | None, str]:
        """Wait for the server to close the socket: (code, reason). Other messages are dropped."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.next(within)
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return None, ""
            return exc.rcvd.code, exc.rcvd.reason
