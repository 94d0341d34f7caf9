"""The GraphQL endpoint: Strawberry's ASGI view, with GraphQL over HTTP completed on top.

Strawberry 0.341 parses the request, runs the schema and encodes the answer; this subclass
hooks in where each of those happens instead of re-implementing the view:

- `__call__`: the URL limit (414), the media type (`negotiation`), and one JSON answer shape for
  every request refused before it runs;
- `parse_http_body`: persisted queries (`persisted`), after Strawberry has read the body or the
  query string, so GET and POST resolve hashes alike;
- `execute_single`: GET runs queries only; anything else is 405 with `Allow: POST`, before a
  resolver runs. Every path ends in the same `schema.execute`, so depth, alias, token and cost
  limits apply to GET and persisted documents as to POST;
- `process_result`: spec status codes under graphql-response+json, and storing a newly
  registered document once it has validated;
- `create_response`: the media type and the caching headers (`caching`).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from joycart.bootstrap import Services
from joycart.http import caching
from joycart.http.negotiation import (
    CONTENT_TYPES,
    GRAPHQL_RESPONSE,
    RequestRefused,
    negotiate,
    refusal_response,
)
from joycart.http.persisted import Mode, PersistedQueries
from joycart.schema import build_schema
from joycart.schema.context import Context

MAX_URL_BYTES = 8 * 1024  # urql switches to POST past 2 KB; browsers and CDNs cope with 8 KB
_GET_OPERATIONS = frozenset({OperationType.QUERY})
_POST_OPERATIONS = frozenset(OperationType.from_http("POST"))
_PRIVATE = {"Cache-Control": caching.PRIVATE}
_PRIVATE_GET = {"Cache-Control": caching.PRIVATE, "Vary": caching.VARY}
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


@dataclass(slots=True)
class _Exchange:
    """What one HTTP request has asked for and what has been learnt about it so far."""

    method: str
    media: str
    client: str
    anonymous: bool = False  # GET only: no Authorization header at all
    if_none_match: str | None = None
    query: str | None = None
    operation_name: str | None = None
    register: str | None = None
    status: int | None = None


# Strawberry hands each hook a different object (the request, its adapter, the result), so the
# request's own state travels in a context variable set for the duration of `__call__`.
_exchange: ContextVar[_Exchange] = ContextVar("joycart_graphql_exchange")


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, services: Services) -> None:
        settings = services.settings
        super().__init__(
            build_schema(production=settings.is_production),
            graphql_ide=None if settings.is_production else "graphiql",
            allow_queries_via_get=True,
            multipart_uploads_enabled=True,
        )
        self.services = services
        self.persisted = PersistedQueries(
            services.sessions,
            mode=Mode(settings.persisted_queries),
            max_documents=settings.persisted_queries_max,
            per_minute=(
                None if settings.rate_limits == "off" else settings.persisted_queries_per_minute
            ),
        )
        self._public = {
            "Cache-Control": caching.public_cache_control(settings.public_cache_seconds),
            "Vary": caching.VARY,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        media = negotiate(request.headers.get("accept"))
        method = request.method
        headers = _PRIVATE_GET if method == "GET" else _PRIVATE
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string", b"")) > MAX_URL_BYTES:
            too_long = RequestRefused(
                f"The URL is longer than {MAX_URL_BYTES} bytes; send the query with POST.",
                code="URI_TOO_LONG",
                status=414,
            )
            await refusal_response(too_long, media, headers)(scope, receive, send)
            return
        client = request.client.host if request.client else "unknown"
        exchange = _Exchange(method=method, media=media, client=client)
        if method == "GET":
            exchange.anonymous = "authorization" not in request.headers
            exchange.if_none_match = request.headers.get("if-none-match")
        token = _exchange.set(exchange)
        try:
            response = await self.run(request)
        except RequestRefused as refused:
            response = refusal_response(refused, media, headers)
        except HTTPException as exc:
            code = _HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
            response = refusal_response(
                RequestRefused(exc.reason, code=code, status=exc.status_code), media, headers
            )
        finally:
            _exchange.reset(token)
        await response(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(request=request, response=response, services=self.services)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Only a browser page load: a GET naming no operation that asks for HTML. A GET that
        # carries a persisted-query hash and no query is an operation, whatever it accepts.
        params = request.query_params
        return (
            request.method == "GET"
            and params.get("query") is None
            and params.get("extensions") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def parse_http_body(
        self, request_adapter: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request_adapter)
        if isinstance(data, list):  # batching is off: Strawberry has already refused it
            return data
        if not isinstance(data.operation_name, str | None):
            raise RequestRefused(
                "The GraphQL operation's `operationName` must be a string or null.",
                code="BAD_REQUEST",
            )
        exchange = _exchange.get()
        if data.extensions and "persistedQuery" in data.extensions:
            resolved = await self.persisted.resolve(data.extensions["persistedQuery"], data.query)
            data.query = resolved.query
            exchange.register = resolved.register
        elif self.persisted.mode is Mode.TRUSTED and data.query is not None:
            await self.persisted.require_trusted(data.query)
        exchange.query = data.query
        exchange.operation_name = data.operation_name
        return data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        method = request_adapter.method
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=_GET_OPERATIONS if method == "GET" else _POST_OPERATIONS,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            if method == "GET":  # raised after parsing, before validation and any resolver
                raise RequestRefused(
                    "Only queries run over GET; send mutations with POST.",
                    code="METHOD_NOT_ALLOWED",
                    status=405,
                    headers={"Allow": "POST"},
                ) from exc
            raise HTTPException(400, exc.as_http_error_reason(method)) from exc
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        data = process_result(result)
        if isinstance(request, Request):  # strawberry leaves multipart temp files open
            await request.close()
        exchange = _exchange.get()
        errors = result.errors
        if errors and result.data is None and all(e.path is None for e in errors):
            # Parsing, validation or variable coercion failed: nothing was executed.
            if exchange.media == GRAPHQL_RESPONSE:
                data.pop("data", None)
                exchange.status = 400
        elif exchange.register is not None and exchange.query is not None:
            await self.persisted.remember(exchange.register, exchange.query, client=exchange.client)
        return data

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        exchange = _exchange.get()
        body = self.encode_json(response_data)
        status = exchange.status or sub_response.status_code or 200
        content_type = CONTENT_TYPES[exchange.media]
        if exchange.method != "GET":
            response = Response(body, status, _PRIVATE, content_type)
        elif self._is_public(exchange, response_data, status):
            headers = {**self._public, "ETag": caching.etag_for(body)}
            if caching.etag_matches(exchange.if_none_match, headers["ETag"]):
                return Response(status_code=304, headers=headers)
            response = Response(body, status, headers, content_type)
        else:
            response = Response(body, status, _PRIVATE_GET, content_type)
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    def _is_public(
        self,
        exchange: _Exchange,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        status: int,
    ) -> bool:
        return (
            status == 200
            and exchange.anonymous
            and isinstance(response_data, dict)
            and not response_data.get("errors")
            and exchange.query is not None
            and caching.is_public_document(exchange.query, exchange.operation_name)
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)
