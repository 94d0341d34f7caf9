"""The HTTP edge of observability: a request id on every request and response, route timings,
an access log line, and `GET /metrics` with its access rule.

`RequestContext` is the outermost middleware, so it sees the connecting peer before the proxy
headers are applied (`X-Request-Id` is believed only from a trusted proxy) and it answers a 500
itself, with the request id, when anything below it fails.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from joycart.observability import database, logs, metrics

log = logging.getLogger("joycart.access")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
PEER_KEY = "joycart.peer"
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
_LOOPBACK = frozenset({"127.0.0.1", "::1"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """`JOYCART_TRUSTED_PROXIES`: addresses or networks, comma-separated; `*` trusts all."""

    def __init__(self, spec: str) -> None:
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        self.everyone = "*" in parts
        self.networks: list[Network] = []
        for part in parts:
            if part != "*":
                self.networks.append(ipaddress.ip_network(part, strict=False))

    def __contains__(self, host: object) -> bool:
        if self.everyone:
            return True
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestContext:
    """Binds a request id for the logs, returns it as `X-Request-Id`, times the route."""

    def __init__(self, app: ASGIApp, *, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    def _request_id(self, scope: Scope, peer: str | None) -> str:
        if peer in self.trusted:
            for name, value in scope.get("headers", []):
                if name == b"x-request-id":
                    given: str = value.decode("latin-1")
                    if _REQUEST_ID.match(given):
                        return given
        return new_request_id()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else None
        scope[PEER_KEY] = peer
        request_id = self._request_id(scope, peer)
        with logs.fresh_context(request_id=request_id):
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, request_id)

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged here with the request id; the client gets a plain 500 carrying the same id.
            log.exception("unhandled error answering %s %s", scope["method"], scope["path"])
            status = 500
            if not response_started:
                await PlainTextResponse(
                    f"Internal server error (request id {request_id}).",
                    500,
                    headers={REQUEST_ID_HEADER: request_id},
                )(scope, receive, send)
        finally:
            metrics.IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.HTTP_DURATION.labels(
                route, scope["method"], metrics.status_class(status)
            ).observe(elapsed)
            metrics.SERVED.inc()
            log.log(
                logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
                "%s %s %s %.1f ms",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


def metrics_access(request: Request, token: str | None) -> Response | None:
    """None if this caller may scrape; else the refusal.

    Open to a scraper on this host that connects directly (no forwarding headers: a local reverse
    proxy would otherwise make the whole internet look local); anyone else needs the bearer token,
    and with no token configured nobody else gets in.
    """
    peer = request.scope.get(PEER_KEY)
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if peer in _LOOPBACK and not forwarded:
        return None
    if not token:
        return PlainTextResponse(
            "Metrics are served to 127.0.0.1 only; set JOYCART_METRICS_TOKEN to scrape from "
            "elsewhere.",
            403,
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return PlainTextResponse(
        "Send the metrics token as `Authorization: Bearer <token>`.",
        401,
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


def _process_metrics() -> bytes:
    path = metrics.multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def metrics_response(request: Request, services: Any) -> Response:
    """Every process's counters (merged from the multiprocess dir) plus the database's gauges."""
    refused = metrics_access(request, services.settings.metrics_token)
    if refused is not None:
        return refused
    try:
        snapshot = await database.read_snapshot(services.engine)
    except Exception:  # the scrape still answers: joycart_database_up 0 says why it is short
        log.warning("metrics: the database did not answer", exc_info=True)
        snapshot = database.Snapshot()
    own = await asyncio.to_thread(_process_metrics)
    return Response(own + database.render(snapshot), media_type=CONTENT_TYPE_LATEST)
