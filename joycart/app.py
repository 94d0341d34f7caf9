"""The Starlette application: GraphQL, the Razorpay webhook, health checks and local images."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from joycart.bootstrap import Services
from joycart.http import GraphQLView
from joycart.integrations.images import LocalImageStore
from joycart.observability.http import RequestContext, TrustedProxies, metrics_response
from joycart.webhooks import razorpay_webhook

log = logging.getLogger("joycart.app")

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_UPLOAD_BODY_BYTES = 11 * 1024 * 1024  # one image of at most 10 MB, plus the multipart frame


class BodyLimit:
    """413 for bodies over the limit, checked on Content-Length and on the bytes as they come."""

    def __init__(self, app: ASGIApp, *, limit: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await PlainTextResponse("Request body too large", 413)(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await PlainTextResponse("Request body too large", 413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def _body_limit(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-type" and value.startswith(b"multipart/form-data"):
            return MAX_UPLOAD_BODY_BYTES
    return MAX_BODY_BYTES


def _cors_origins(services: Services) -> tuple[list[str], str | None]:
    configured = services.settings.cors_origins
    if configured:
        return [o.strip() for o in configured.split(",") if o.strip()], None
    if services.settings.is_production:
        return [], None
    return [], r"^http://(localhost|127\.0\.0\.1)(:\d+)?$"


def create_app(
    services: Services,
    *,
    lifespan: Callable[[Starlette], Any] | None = None,
) -> Starlette:
    origins, origin_regex = _cors_origins(services)
    graphql = GraphQLView(services, allowed_origins=origins, origin_regex=origin_regex)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure means not ready; the reason goes to the log
            log.warning("readiness check failed", exc_info=True)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return await metrics_response(request, services)

    async def webhook(request: Request) -> Response:
        return await razorpay_webhook(request, services)

    async def image(request: Request) -> Response:
        store = services.images
        if not isinstance(store, LocalImageStore):
            return PlainTextResponse("Not found", 404)
        path = store.path_for(request.path_params["key"])
        if path is None or not path.is_file():
            return PlainTextResponse("Not found", 404)
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/webhooks/razorpay", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/images/{key:path}", image, methods=["GET"]),
        ],
        middleware=[
            # Outermost: it must see the connecting peer before the proxy headers replace it.
            Middleware(RequestContext, trusted=TrustedProxies(services.settings.trusted_proxies)),
            # Applied here rather than by uvicorn (serve runs it with proxy_headers off), so the
            # request id check above still sees who connected.
            Middleware(ProxyHeadersMiddleware, trusted_hosts=services.settings.trusted_proxy_list),
            Middleware(BodyLimit, limit=_body_limit),
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_origin_regex=origin_regex,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=["X-Request-Id"],  # so an SPA can quote it in a bug report
                max_age=600,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app


@asynccontextmanager
async def no_lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
