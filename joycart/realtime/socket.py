"""The WebSocket edge: graphql-transport-ws with sign-in, limits, keep-alive and slow consumers.

- **Sign-in.** `connection_init`'s payload carries the access token, as GraphiQL's Headers tab
  and the `graphql-ws` clients (Apollo's `GraphQLWsLink`, urql's `subscriptionExchange`) send
  it: `{"Authorization": "Bearer <token>"}`, `{"headers": {"Authorization": "Bearer <token>"}}`
  or `{"accessToken": "<token>"}` (`authToken` works too). A bad, expired or revoked token
  closes the socket with 4401. No token: an anonymous socket, whose subscriptions answer
  `UNAUTHENTICATED`.
- **While it lives.** At the token's `exp` the socket closes with 4401; the sign-in is checked
  again every minute (a revoked one closes with 4401 too). The client reconnects with a fresh
  token and gets the current state first.
- **Limits.** Sockets per account per process (4429 past it), subscriptions per socket (an
  `error` for the one too many), only subscriptions (queries and mutations go over HTTP).
- **Keep-alive.** A graphql-transport-ws `ping` every `JOYCART_WS_KEEPALIVE_SECONDS`; clients
  answer `pong` on their own. (uvicorn also pings at the WebSocket level and drops a dead peer.)
- **Slow consumers.** A message the client has not taken within `JOYCART_WS_SEND_TIMEOUT_SECONDS`,
  or a subscription `JOYCART_WS_QUEUE_SIZE` notices behind, drops the socket with 1013: its
  state is freed at once, and nothing waits in memory for a client that does not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)
from strawberry.types.unset import UNSET, UnsetType

from joycart.errors import Unauthenticated
from joycart.realtime.connection import SocketConnection
from joycart.realtime.limits import (
    SLOW_CONSUMER,
    UNAUTHORIZED,
    SocketLimits,
)
from joycart.realtime.socket_auth import SocketRejected, sign_in
from joycart.resolvers import auth
from joycart.schema.context import Context
from joycart.schema.socket_context import SocketContext

if TYPE_CHECKING:
    from joycart.bootstrap import Services

log = logging.getLogger("joycart.realtime")

CLOSE_GRACE_SECONDS = 2.0  # a close frame stuck behind unread data: give up and hang up
MAX_QUERY_TOKENS = 2000  # as the schema's MaxTokensLimiter


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """JSON as text frames: browsers hand binary frames to graphql-ws clients as Blobs."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        text = encoded.decode() if isinstance(encoded, bytes) else encoded
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class SocketHandler(BaseGraphQLTransportWSHandler[Context, None]):
    @property
    def _connection(self) -> SocketConnection:
        assert isinstance(self.context, SocketContext)
        assert self.context.connection is not None
        return self.context.connection

    @property
    def _limits(self) -> SocketLimits:
        return self._connection.hub.limits

    async def handle(self) -> None:
        connection = self._connection
        protocol = asyncio.create_task(super().handle())
        timers = asyncio.create_task(self._timers())
        try:
            await asyncio.wait({protocol, connection.ended}, return_when=asyncio.FIRST_COMPLETED)
            if not protocol.done():
                log.info("closing socket %s: %s", connection.close_code, connection.close_reason)
                # Freed before the close goes out: a client that sees it may count on that.
                await self.shutdown()
                connection.release()
                await self._close(connection.close_code, connection.close_reason)
                # The close ends the receive loop; a client that reads nothing may hold it up.
                done, _ = await asyncio.wait({protocol}, timeout=CLOSE_GRACE_SECONDS)
                if not done:
                    protocol.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await protocol
        finally:
            for task in (protocol, timers):
                task.cancel()
            await asyncio.gather(protocol, timers, return_exceptions=True)
            connection.release()

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, WebSocketDisconnected):
            async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                await self.websocket.close(code=code, reason=reason)

    def _closed(self) -> bool:
        if self._connection.ended.done():
            return True
        ws = getattr(self.websocket, "ws", None)
        return isinstance(ws, WebSocket) and ws.application_state is WebSocketState.DISCONNECTED

    async def send_message(self, message: Message) -> None:
        assert isinstance(self.context, SocketContext)
        await self.context.end_update()  # a subscription's result is complete: free its reads
        if self._closed():
            return  # closing: nothing more goes out
        try:
            async with asyncio.timeout(self._limits.send_timeout_seconds):
                await super().send_message(message)
        except TimeoutError:
            self._connection.end(SLOW_CONSUMER, "A message waited too long to be taken: reconnect.")
        except RuntimeError:
            if not self._closed():  # Starlette refuses a send after close: closed meanwhile
                raise

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except SocketRejected as exc:
            self._connection.end(exc.code, exc.reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and not self._is_subscription(message):
            error = GraphQLError(
                "Only subscriptions go over the socket; send queries and mutations with "
                "POST /graphql.",
                extensions={"code": "INVALID_INPUT"},
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)

    @staticmethod
    def _is_subscription(message: SubscribeMessage) -> bool:
        payload: Any = message.get("payload")
        query = payload.get("query") if isinstance(payload, Mapping) else None
        if not isinstance(query, str):
            return True  # malformed: the protocol handler answers it
        try:
            document = parse(query, max_tokens=MAX_QUERY_TOKENS)
        except GraphQLError:
            return True  # a syntax error: the protocol handler closes with 4400
        operation = get_operation_ast(document, payload.get("operationName"))
        return operation is None or operation.operation is OperationType.SUBSCRIPTION

    async def _timers(self) -> None:
        """One timer per socket: keep-alive pings, the token's expiry, and sign-in re-checks."""
        connection, limits = self._connection, self._limits
        loop = asyncio.get_running_loop()
        ping_due = loop.time() + limits.keepalive_seconds
        check_due = loop.time() + limits.auth_recheck_seconds
        while True:
            wait = ping_due - loop.time()
            if connection.expires_at is not None:
                left = (connection.expires_at - connection.hub.clock()).total_seconds()
                if left <= 0:
                    connection.end(
                        UNAUTHORIZED, "The access token expired: reconnect with a new one."
                    )
                    return
                wait = min(wait, left, check_due - loop.time())
            if wait > 0 and not connection.signed_in.done():
                await asyncio.wait({connection.signed_in}, timeout=wait)  # from now: its expiry
                continue
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            now = loop.time()
            if now >= ping_due:
                ping_due = now + limits.keepalive_seconds
                if self.connection_acknowledged:
                    await self.send_message({"type": "ping"})
            if connection.token is not None and now >= check_due:
                check_due = now + limits.auth_recheck_seconds
                if not await self._still_signed_in(connection.token):
                    return

    async def _still_signed_in(self, token: str) -> bool:
        """Whether the token's sign-in still holds (the account exists, nothing revoked it)."""
        services = self.context.services
        try:
            async with services.sessions() as session:
                await auth.user_for_token(
                    session, token=token, jwt_secret=services.settings.jwt_secret or ""
                )
        except Unauthenticated as exc:
            self._connection.end(UNAUTHORIZED, exc.message)
            return False
        return True


class SubscriptionsGraphQL(GraphQL[Context, None]):
    """The GraphQL ASGI app with JoyCart's WebSocket handling; the same instance serves
    `Route("/graphql")` and `WebSocketRoute("/graphql")`."""

    graphql_transport_ws_handler_class = SocketHandler
    websocket_adapter_class = TextWebSocketAdapter

    def __init__(
        self,
        schema: BaseSchema,
        *,
        services: Services,
        allowed_origins: Sequence[str] = (),
        origin_regex: str | None = None,
        **options: Any,
    ) -> None:
        limits = services.realtime.limits
        super().__init__(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=limits.max_subscriptions,
            connection_init_wait_timeout=timedelta(seconds=limits.init_timeout_seconds),
            allowed_origins=allowed_origins,
            **options,
        )
        self.services = services
        self._origin_pattern = re.compile(origin_regex) if origin_regex else None

    def socket_context(self, websocket: WebSocket) -> SocketContext:
        client = websocket.client.host if websocket.client is not None else "unknown"
        connection = SocketConnection(self.services.realtime, client=client)
        return SocketContext(
            request=None, response=None, services=self.services, connection=connection
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if isinstance(request, WebSocket):
            return self.socket_context(request)
        assert isinstance(response, Response)
        return Context(request=request, response=response, services=self.services)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        assert isinstance(context, SocketContext)
        assert context.connection is not None
        await sign_in(self.services, context.connection, context.connection_params or {})
        unset: UnsetType = UNSET
        return unset

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """The origins CORS allows may open sockets too (tokens never ride on cookies, but a
        page should not reach the API one way and be refused the other)."""
        if super().is_websocket_origin_allowed(request, origin):
            return True
        return self._origin_pattern is not None and self._origin_pattern.match(origin) is not None
