"""The simulated Razorpay's pieces: wire formats, canned errors, recorded requests, faults and
the parsing rules of its REST API (see the package docstring)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

JSON = dict[str, Any]
Handler = Callable[[Request, Any], JSON]
ACCOUNT_ID = "acc_SIMULATOR00001"
FAULTS = frozenset({
    "500", "html502", "slow", "drop_after_acting", "drop_before_acting", "400",
    "401", "403", "404", "409", "429", "html", "empty", "unexpected200", "slow_before_acting",
    "hold",
})  # fmt: skip
# Canned answers as Razorpay (or a proxy in front of it) gives them; see the reference notes: the
# SDK maps by the body's error.code, so 401/409/429 arrive as BadRequestError, 404 as ServerError.
_CANNED: dict[str, tuple[int, str, str]] = {
    "401": (401, "BAD_REQUEST_ERROR", "Authentication failed"),
    "403": (403, "BAD_REQUEST_ERROR", "Access forbidden for requested resource"),
    "404": (404, "NOT_FOUND", "The requested URL was not found on the server."),
    "409": (409, "BAD_REQUEST_ERROR", "A request with the same idempotency key is in progress."),
    "429": (429, "BAD_REQUEST_ERROR", "Too many requests"),
}
_ALNUM = string.ascii_letters + string.digits
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{10,}")
_SERVER_ERROR = "The server encountered an error. The incident has been reported to admins."


def _new_id(prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(14))


def _now() -> int:
    return int(time.time())


def sign_webhook(body: bytes, secret: str) -> str:
    """Return Razorpay's ``X-Razorpay-Signature``: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookDelivery:
    """One signed webhook POST, ready to send (possibly several times, like Razorpay retries)."""

    body: bytes
    event_id: str
    event_type: str
    secret: str = field(default="", repr=False)

    def headers(self, secret: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "Razorpay-Webhook/v1",
            "X-Razorpay-Event-Id": self.event_id,
            "Request-Id": self.event_id,
            "X-Razorpay-Signature": sign_webhook(
                self.body, self.secret if secret is None else secret
            ),
        }

    def json(self) -> JSON:
        parsed: JSON = json.loads(self.body)
        return parsed


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class _Fault:
    method: str
    path_prefix: str
    kind: str
    remaining: int
    delay: float


@dataclass
class _IdempotentRefund:
    fingerprint: str
    refund_id: str
    done: bool = False


class ApiError(Exception):
    """An error answered in Razorpay's JSON shape; the SDK maps ``code`` to its exception."""

    def __init__(
        self,
        status: int,
        description: str,
        field: str | None = None,
        code: str = "BAD_REQUEST_ERROR",
    ) -> None:
        super().__init__(description)
        self.status, self.description, self.field, self.code = status, description, field, code

    def response(self) -> JSONResponse:
        invalid = self.status == 400 and self.code == "BAD_REQUEST_ERROR"
        error: JSON = {
            "code": self.code,
            "description": self.description,
            "source": "business" if invalid else "NA",
            "step": "payment_initiation" if invalid else "NA",
            "reason": "input_validation_failed" if invalid else "NA",
            "metadata": {},
            "field": self.field,
        }
        return JSONResponse({"error": error}, status_code=self.status)


class _DropConnection(Response):
    """Closes the client's TCP connection without any HTTP response (uvicorn-specific)."""

    def __init__(self, server: uvicorn.Server | None) -> None:
        super().__init__()
        self._server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connections = self._server.server_state.connections if self._server else set()
        for connection in list(connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and getattr(connection, "client", None) == scope["client"]:
                transport.close()
                await asyncio.sleep(0.01)  # let uvicorn see the disconnect before we return
                return
        # Not served by our uvicorn: promise a body that never comes; uvicorn then closes.
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
        )
        await send({"type": "http.response.body", "body": b"", "more_body": True})


def _object(body: Any, allowed: set[str]) -> JSON:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body should be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"{', '.join(unknown)} is/are not required and should not be sent.")
    return body


def _amount(value: Any) -> int:
    if value is None:
        raise ApiError(400, "The amount field is required.", "amount")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "The amount must be an integer.", "amount")
    if value < 100:
        raise ApiError(400, "The amount must be at least INR 1.00", "amount")
    return value


def _notes(value: Any) -> dict[str, Any] | list[Any]:
    if value is None or value == []:
        return []
    if not isinstance(value, dict) or len(value) > 15:
        raise ApiError(400, "The notes should be an object with at most 15 keys.", "notes")
    if any(len(str(v)) > 256 for v in value.values()):
        raise ApiError(400, "The notes value may not be greater than 256 characters.", "notes")
    return dict(value)


def _receipt(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 40):
        raise ApiError(400, "The receipt may not be greater than 40 characters.", "receipt")
    return value


def _collection(items: list[JSON], query: Mapping[str, str]) -> JSON:
    try:
        count, skip = int(query.get("count", "10")), int(query.get("skip", "0"))
    except ValueError:
        raise ApiError(400, "The count and skip must be integers.", "count") from None
    if not 1 <= count <= 100 or skip < 0:
        raise ApiError(400, "The count must be between 1 and 100.", "count")
    page = items[skip : skip + count]
    return {"entity": "collection", "count": len(page), "items": page}


def _found(table: dict[str, JSON], entity_id: str) -> JSON:
    if entity_id not in table:
        raise ApiError(404, "The id provided does not exist")
    return table[entity_id]


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
