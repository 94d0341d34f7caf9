"""Signing a WebSocket in at `connection_init`: where its access token may be, and the close code
for a socket that is refused (see `joycart.realtime.socket`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from joycart import security
from joycart.errors import Unauthenticated
from joycart.realtime.connection import SocketConnection
from joycart.realtime.hub import TooManyConnections
from joycart.realtime.limits import TOO_MANY_CONNECTIONS, UNAUTHORIZED
from joycart.resolvers import auth

if TYPE_CHECKING:
    from joycart.bootstrap import Services


class SocketRejected(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def access_token(params: Mapping[str, object]) -> str | None:
    """The access token in `connection_init`'s payload, or None when it carries none."""
    headers = params.get("headers")
    sources = [params, headers] if isinstance(headers, Mapping) else [params]
    for source in sources:
        for key, value in source.items():
            if key.lower() == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("Send the token as `Authorization: Bearer <token>`.")
                return token.strip()
    for key in ("accessToken", "authToken"):
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().removeprefix("Bearer ").strip()
    return None


async def sign_in(
    services: Services, connection: SocketConnection, params: Mapping[str, object]
) -> None:
    """Authenticate the socket at `connection_init`, or refuse it with the close code to use."""
    secret = services.settings.jwt_secret or ""
    try:
        token = access_token(params)
        if token is None:
            connection.admit(None, None, None)
            return
        claims = security.decode_access_token(secret, token)
        async with services.sessions() as session:
            user = await auth.user_for_token(session, token=token, jwt_secret=secret)
        connection.admit(user, token, claims.expires_at)
    except Unauthenticated as exc:
        raise SocketRejected(UNAUTHORIZED, exc.message) from exc
    except TooManyConnections as exc:
        raise SocketRejected(TOO_MANY_CONNECTIONS, str(exc)) from exc
