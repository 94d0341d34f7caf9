"""The GraphQL endpoint under hostile input: size, batching, GET, depth, aliases, and masking."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from joycart.app import create_app
from joycart.bootstrap import Services
from joycart.resolvers import catalog
from joycart.schema import MAX_DEPTH, build_schema
from tests.helpers import Api

REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
    user { id } errors { code field } } }"""
JSON = {"Content-Type": "application/json"}
INLINE_REGISTER = """mutation { register(input: {email: "get@example.com",
    password: "correct horse battery", name: "G"}) { user { id } errors { code } } }"""


async def _users(services: Services) -> int:
    async with services.engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM users")) or 0)


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code < 500, response.text
    found: list[dict[str, Any]] = response.json().get("errors") or []
    return found


async def test_body_over_two_megabytes_is_413_and_writes_nothing(
    http: httpx.AsyncClient, services: Services
) -> None:
    variables = {
        "input": {
            "email": "big@example.com",
            "password": "correct horse battery",
            "name": "B",
            "padding": "x" * (2 * 1024 * 1024),
        }
    }
    body = json.dumps({"query": REGISTER, "variables": variables}).encode()
    response = await http.post("/graphql", content=body, headers=JSON)
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    chunked = await http.post("/graphql", content=chunks(), headers=JSON)
    assert chunked.status_code == 413
    assert await _users(services) == 0


async def test_batched_request_is_400(http: httpx.AsyncClient, services: Services) -> None:
    register = {
        "query": REGISTER,
        "variables": {
            "input": {
                "email": "batch@example.com",
                "password": "correct horse battery",
                "name": "B",
            }
        },
    }
    response = await http.post("/graphql", json=[register, {"query": "{ __typename }"}])
    assert response.status_code == 400
    assert await _users(services) == 0


async def test_mutation_over_get_never_runs(http: httpx.AsyncClient, services: Services) -> None:
    # Queries run over GET (tests/api/test_http_get.py); mutations never do.
    for accept in ("application/json", "text/html", "application/graphql-response+json"):
        response = await http.get(
            "/graphql", params={"query": INLINE_REGISTER}, headers={"Accept": accept}
        )
        assert response.status_code == 405, (accept, response.text)
        assert response.headers["allow"] == "POST"
    assert await _users(services) == 0
    # The same mutation over POST does write: the count above can fail.
    assert (await http.post("/graphql", json={"query": INLINE_REGISTER})).status_code == 200
    assert await _users(services) == 1


def _nested_order_query(depth: int) -> str:
    # order -> items -> order -> items ... : a real cycle of the schema, `depth` levels deep
    opening, closing = "", ""
    for level in range(depth - 1):
        field = "items" if level % 2 == 0 else "order"
        opening += f"{field} {{ "
        closing += " }"
    return f'{{ order(id: "00000000-0000-0000-0000-000000000000") {{ {opening}id{closing} }} }}'


async def test_depth_twenty_query_is_refused_by_depth(api: Api) -> None:
    allowed = await api.raw(_nested_order_query(MAX_DEPTH - 2))
    assert _errors(allowed) == []  # the limit is what refuses the deeper one
    response = await api.raw(_nested_order_query(20))
    errors = _errors(response)
    assert errors
    assert any("depth" in e["message"].lower() for e in errors), errors
    assert response.json().get("data") is None


async def test_five_hundred_aliases_are_refused(api: Api) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(500)) + " }"
    response = await api.raw(query)
    errors = _errors(response)
    assert any("aliases" in e["message"] for e in errors), errors
    assert response.json().get("data") is None


async def test_unexpected_resolver_error_is_masked_and_logged_with_request_id(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(catalog, "list_products", broken)
    caplog.set_level(logging.ERROR)
    response = await api.raw("{ products { edges { node { id } } } }")
    errors = _errors(response)
    assert len(errors) == 1
    assert "request id" in errors[0]["message"]
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text
    request_id = errors[0]["extensions"]["requestId"]
    logged = [r for r in caplog.records if r.name == "joycart.graphql"]
    assert [request_id in r.getMessage() for r in logged] == [True]
    assert "secret detail" in str(logged[0].exc_info[1] if logged[0].exc_info else None)


async def test_refused_requests_log_no_errors(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    response = await api.raw("{ me { id } }", token="not-a-jwt")
    assert [e["extensions"]["code"] for e in _errors(response)] == ["UNAUTHENTICATED"]
    assert _errors(await api.raw(_nested_order_query(20)))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_health_and_readiness_answer_200(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200


async def test_graphiql_is_served_in_development(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


INTROSPECTION = "{ __schema { queryType { name } types { name } } }"


async def test_production_schema_refuses_introspection() -> None:
    development = await build_schema().execute(INTROSPECTION)
    assert development.errors is None  # the query is fine: production refuses it
    result = await build_schema(production=True).execute(INTROSPECTION)
    assert result.errors
    assert result.data is None


async def test_production_schema_gives_no_field_suggestions() -> None:
    development = await build_schema().execute("{ mee { id } }")
    assert development.errors
    assert "Did you mean" in development.errors[0].message
    result = await build_schema(production=True).execute("{ mee { id } }")
    assert result.errors
    assert all("Did you mean" not in e.message for e in result.errors)


async def test_production_app_serves_no_graphiql_and_no_introspection(
    services: Services,
) -> None:
    settings = services.settings.model_copy(update={"env": "production"})
    app = create_app(dataclasses.replace(services, settings=settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://joycart") as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code >= 400
        assert "graphiql" not in page.text.lower()
        response = await client.post("/graphql", json={"query": INTROSPECTION})
        assert response.json()["errors"]
        assert response.json().get("data") is None
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status_code == 200


async def test_nul_characters_anywhere_are_refused_as_input_errors_not_500s(
    api: Api, services: Services
) -> None:
    seller = await api.register("SELLER")
    attempts = [
        (
            "query($s: String) { products(search: $s) { edges { cursor } } }",
            {"s": "a\u0000b"},
            None,
        ),
        (
            "mutation($e: String!) { register(input: {email: $e, password: "
            '"long enough pass", name: "N"}) { errors { code } } }',
            {"e": "a\u0000@example.com"},
            None,
        ),
        (
            'mutation($e: String!) { login(input: {email: $e, password: "long enough pass"}) '
            "{ errors { code } } }",
            {"e": "a\u0000@example.com"},
            None,
        ),
        (
            "mutation($d: String!) { createProduct(input: {name: "
            '"Tea", description: $d, price: 1000, stock: 1}) { errors { code field } } }',
            {"d": "nul \u0000 inside"},
            seller.token,
        ),
    ]
    for query, variables, token in attempts:
        response = await api.raw(query, variables, token)
        assert response.status_code == 200
        body = response.json()
        assert "INTERNAL" not in response.text, body
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        data = body.get("data") or {}
        codes += [e["code"] for value in data.values() if value for e in value.get("errors", [])]
        assert codes, body
        assert set(codes) <= {"INVALID_INPUT", "INVALID_CREDENTIALS"}, body
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM users")) == 1
        assert await conn.scalar(text("SELECT count(*) FROM products")) == 0
