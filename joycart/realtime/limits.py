"""The limits of one process's sockets, read once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from joycart.config import Settings

# Close codes (graphql-transport-ws uses 44xx; 1013 is RFC 6455's "try again later").
UNAUTHORIZED = 4401  # no valid access token, or it expired or was revoked while the socket lived
TOO_MANY_CONNECTIONS = 4429  # the account already holds the most sockets this process allows
SLOW_CONSUMER = 1013  # the client did not take its messages: reconnect; the first one catches up


@dataclass(frozen=True)
class SocketLimits:
    max_subscriptions: int = 20  # per socket
    max_connections_per_user: int = 10  # per process
    keepalive_seconds: float = 15.0  # a graphql-transport-ws `ping` this often
    queue_size: int = 64  # notices a subscription may be behind before its socket is dropped
    send_timeout_seconds: float = 30.0  # one message not taken by the client within this: dropped
    auth_recheck_seconds: float = 60.0  # a revoked sign-in ends the socket within this
    init_timeout_seconds: float = 10.0  # `connection_init` must come this soon after connecting
    read_concurrency: int = 5  # updates read at once (a burst waits its turn, in the pool's size)

    @classmethod
    def of(cls, settings: Settings) -> SocketLimits:
        return cls(
            max_subscriptions=settings.ws_max_subscriptions,
            max_connections_per_user=settings.ws_max_connections_per_user,
            keepalive_seconds=settings.ws_keepalive_seconds,
            queue_size=settings.ws_queue_size,
            send_timeout_seconds=settings.ws_send_timeout_seconds,
            read_concurrency=settings.db_pool_size,
        )
