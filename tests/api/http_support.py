"""Shared pieces of the GraphQL-over-HTTP tests (tests/api/test_http_*.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from joycart.app import create_app
from joycart.bootstrap import Services
from joycart.http.persisted import sha256_hex

GRAPHQL_RESPONSE = "application/graphql-response+json"
AS_GRAPHQL_RESPONSE = {"Accept": GRAPHQL_RESPONSE}
AS_JSON = {"Accept": "application/json"}


def unique_products_query() -> str:
    """A valid public query whose text (and so its hash) no other test sends: the session's
    app keeps its LRU from test to test while the tables are emptied after each."""
    name = f"Catalogue_{uuid.uuid4().hex[:12]}"
    return f"query {name} {{ products(first: 5) {{ edges {{ node {{ id name }} }} }} }}"


def nested_order_query(depth: int) -> str:
    """order -> items -> order ...: a real cycle of the schema, `depth` levels deep."""
    opening, closing = "", ""
    for level in range(depth - 1):
        opening += ("items" if level % 2 == 0 else "order") + " { "
        closing += " }"
    return f'{{ order(id: "00000000-0000-0000-0000-000000000000") {{ {opening}id{closing} }} }}'


def persisted(query: str | None = None, *, sha256: str | None = None) -> dict[str, Any]:
    """The `extensions` of an Apollo APQ request."""
    digest = sha256 or sha256_hex(query or "")
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def get_params(
    query: str | None = None,
    *,
    variables: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> dict[str, str]:
    """GraphQL-over-HTTP GET parameters, JSON values as URL-encoded strings (as urql sends)."""
    params: dict[str, str] = {}
    if query is not None:
        params["query"] = query
    if variables is not None:
        params["variables"] = json.dumps(variables)
    if extensions is not None:
        params["extensions"] = json.dumps(extensions)
    if operation_name is not None:
        params["operationName"] = operation_name
    return params


async def stored_hashes(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT sha256 FROM persisted_queries"))
        return {row[0] for row in rows}


async def count_users(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM users")) or 0)


@contextlib.contextmanager
def sql_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block (the test server shares it)."""
    seen: list[str] = []

    def record(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextlib.asynccontextmanager
async def app_client(
    services: Services,
    *,
    client: tuple[str, int] = ("127.0.0.1", 40000),
    **settings: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """Another app instance (its own view, its own LRU) over the same engine and database,
    with some settings changed, driven in process."""
    changed = services.settings.model_copy(update=settings)
    app = create_app(dataclasses.replace(services, settings=changed))
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://joycart") as http:
        yield http


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp) -> AsyncIterator[str]:
    """Serve another app instance on a real port of 127.0.0.1 (for clients in other processes),
    in this event loop like the session's `server`; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for "started"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def trusted_app(services: Services) -> ASGIApp:
    """The app in trusted-documents mode, over the same engine and database."""
    settings = services.settings.model_copy(update={"persisted_queries": "trusted"})
    return create_app(dataclasses.replace(services, settings=settings))
