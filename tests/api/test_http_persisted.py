"""Automatic Persisted Queries in Apollo's protocol, stored where every API process finds them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from joycart.app import create_app
from joycart.bootstrap import Services, build_services
from joycart.http.persisted import sha256_hex
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.schema import MAX_DEPTH
from tests.api.http_support import (
    AS_GRAPHQL_RESPONSE,
    AS_JSON,
    app_client,
    count_users,
    get_params,
    nested_order_query,
    persisted,
    sql_statements,
    stored_hashes,
    unique_products_query,
)
from tests.conftest import make_settings
from tests.helpers import Api, assert_invariants

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


def _codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def _register(http: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "extensions": persisted(query)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def test_unknown_hash_is_persisted_query_not_found(http: httpx.AsyncClient) -> None:
    unknown = persisted(unique_products_query())
    posted = await http.post("/graphql", json={"extensions": unknown}, headers=AS_JSON)
    assert posted.status_code == 200  # what Apollo's clients expect under application/json
    assert posted.json() == {
        "errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": NOT_FOUND}}]
    }
    strict = await http.post("/graphql", json={"extensions": unknown}, headers=AS_GRAPHQL_RESPONSE)
    assert strict.status_code == 400  # no operation ran: a request error, no `data`
    assert strict.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert "data" not in strict.json()
    got = await http.get("/graphql", params=get_params(extensions=unknown))
    assert got.status_code == 200
    assert _codes(got) == [NOT_FOUND]
    assert got.headers["cache-control"] == "private, no-store"


async def test_a_hash_that_is_not_the_sha256_of_the_query_is_refused_and_nothing_runs(
    http: httpx.AsyncClient, services: Services
) -> None:
    mutation = """mutation { register(input: {email: "apq@example.com",
        password: "correct horse battery", name: "A"}) { user { id } } }"""
    wrong = persisted(sha256=sha256_hex(mutation + " "))
    for headers in (AS_JSON, AS_GRAPHQL_RESPONSE):
        response = await http.post(
            "/graphql", json={"query": mutation, "extensions": wrong}, headers=headers
        )
        assert response.status_code == 400, response.text
        assert _codes(response) == ["PERSISTED_QUERY_HASH_MISMATCH"]
        assert "data" not in response.json()
    assert await stored_hashes(services.engine) == set()
    assert await count_users(services.engine) == 0


async def test_registered_document_runs_by_hash_alone_over_get_and_post(
    api: Api, http: httpx.AsyncClient, services: Services
) -> None:
    seller = await api.register("SELLER")
    product_id = await api.create_product(seller, name="Assam")
    query = unique_products_query()
    expected = {"products": {"edges": [{"node": {"id": product_id, "name": "Assam"}}]}}
    assert (await _register(http, query))["data"] == expected
    assert await stored_hashes(services.engine) == {sha256_hex(query)}

    by_hash = persisted(query)
    posted = await http.post("/graphql", json={"extensions": by_hash})
    assert posted.json() == {"data": expected}
    got = await http.get("/graphql", params=get_params(extensions=by_hash))
    assert got.json() == {"data": expected}
    assert got.headers["cache-control"].startswith("public")


async def test_a_second_api_instance_on_the_same_database_finds_the_document(
    api: Api,
    http: httpx.AsyncClient,
    database_url: str,
    data_dir: Path,
    razorpay: RazorpaySimulator,
) -> None:
    seller = await api.register("SELLER")
    product_id = await api.create_product(seller, name="Nilgiri")
    query = unique_products_query()
    await _register(http, query)  # through the session's server, on a real port

    # Another process in all but name: its own engine, pool, view and LRU.
    other = build_services(
        make_settings(data_dir), database_url=database_url, razorpay_api_url=razorpay.base_url
    )
    try:
        transport = httpx.ASGITransport(app=create_app(other))
        async with httpx.AsyncClient(transport=transport, base_url="http://second") as second:
            by_hash = persisted(query)
            got = await second.get("/graphql", params=get_params(extensions=by_hash))
            posted = await second.post("/graphql", json={"extensions": by_hash})
    finally:
        await other.close()
    expected = {"data": {"products": {"edges": [{"node": {"id": product_id, "name": "Nilgiri"}}]}}}
    assert got.json() == expected
    assert posted.json() == expected


async def test_registration_over_get_as_urql_sends_it(
    http: httpx.AsyncClient, services: Services
) -> None:
    query = unique_products_query()
    first = await http.get("/graphql", params=get_params(extensions=persisted(query)))
    assert _codes(first) == [NOT_FOUND]
    registered = await http.get("/graphql", params=get_params(query, extensions=persisted(query)))
    assert registered.json() == {"data": {"products": {"edges": []}}}
    assert await stored_hashes(services.engine) == {sha256_hex(query)}


async def test_a_hit_is_answered_from_the_processes_lru_without_sql(
    http: httpx.AsyncClient, services: Services
) -> None:
    query = unique_products_query()
    await _register(http, query)
    async with services.engine.begin() as conn:  # only this process still knows it
        await conn.execute(text("DELETE FROM persisted_queries"))
    # A hash-only request whose operation needs no database at all: zero statements.
    ping = "query Ping_" + sha256_hex(query)[:8] + " { __typename }"
    await _register(http, ping)
    with sql_statements(services.engine) as statements:
        answer = await http.post("/graphql", json={"extensions": persisted(ping)})
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert statements == []
    still = await http.post("/graphql", json={"extensions": persisted(query)})
    assert still.json() == {"data": {"products": {"edges": []}}}
    async with app_client(services) as other:  # an LRU that never saw it asks the table
        missing = await other.post("/graphql", json={"extensions": persisted(query)})
    assert _codes(missing) == [NOT_FOUND]


async def test_documents_that_fail_validation_or_the_limits_are_not_stored(
    http: httpx.AsyncClient, services: Services
) -> None:
    invalid = "query Bad { products { edges { node { nope } } } }"
    too_deep = nested_order_query(MAX_DEPTH + 4)
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    for query, word in ((invalid, "nope"), (too_deep, "depth"), (aliases, "aliases")):
        response = await http.post(
            "/graphql",
            json={"query": query, "extensions": persisted(query)},
            headers=AS_GRAPHQL_RESPONSE,
        )
        assert response.status_code == 400, response.text
        assert "data" not in response.json()
        assert any(word in e["message"].lower() for e in response.json()["errors"]), response.text
    assert await stored_hashes(services.engine) == set()


async def test_a_persisted_mutation_runs_over_post_but_never_over_get(
    http: httpx.AsyncClient, services: Services
) -> None:
    mutation = """mutation Join($input: RegisterInput!) {
        register(input: $input) { user { id } errors { code } } }"""

    def join(email: str) -> dict[str, Any]:
        return {"input": {"email": email, "password": "correct horse battery", "name": "J"}}

    body = {"query": mutation, "variables": join("a@example.com")}
    first = await http.post("/graphql", json={**body, "extensions": persisted(mutation)})
    assert first.json()["data"]["register"]["errors"] == []
    assert sha256_hex(mutation) in await stored_hashes(services.engine)
    got = await http.get(
        "/graphql",
        params=get_params(variables=join("b@example.com"), extensions=persisted(mutation)),
    )
    assert got.status_code == 405
    assert got.headers["allow"] == "POST"
    assert await count_users(services.engine) == 1
    posted = await http.post(
        "/graphql", json={"variables": join("c@example.com"), "extensions": persisted(mutation)}
    )
    assert posted.json()["data"]["register"]["errors"] == []
    assert await count_users(services.engine) == 2


async def test_bad_persisted_query_extensions_are_400(http: httpx.AsyncClient) -> None:
    cases = [
        ({"persistedQuery": "abc"}, "BAD_REQUEST"),
        (
            {"persistedQuery": {"version": 2, "sha256Hash": "a" * 64}},
            "PERSISTED_QUERY_NOT_SUPPORTED",
        ),
        ({"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}, "BAD_REQUEST"),
        ({"persistedQuery": {"version": 1}}, "BAD_REQUEST"),
    ]
    for extensions, code in cases:
        response = await http.post("/graphql", json={"extensions": extensions})
        assert response.status_code == 400, response.text
        assert _codes(response) == [code]


async def test_stored_documents_are_capped(http: httpx.AsyncClient, services: Services) -> None:
    queries = [unique_products_query() for _ in range(3)]
    async with app_client(services, persisted_queries_max=2) as capped:
        for query in queries:  # each still runs; only the first two are kept
            response = await capped.post(
                "/graphql", json={"query": query, "extensions": persisted(query)}
            )
            assert response.json() == {"data": {"products": {"edges": []}}}
        assert await stored_hashes(services.engine) == {sha256_hex(q) for q in queries[:2]}
        later = await capped.post("/graphql", json={"extensions": persisted(queries[2])})
        assert _codes(later) == [NOT_FOUND]


async def test_concurrent_registrations_never_store_more_than_the_cap(
    services: Services,
) -> None:
    queries = [unique_products_query() for _ in range(12)]
    async with app_client(services, persisted_queries_max=5) as capped:
        answers = await asyncio.gather(
            *(
                capped.post("/graphql", json={"query": q, "extensions": persisted(q)})
                for q in queries
            )
        )
    assert [a.json() for a in answers] == [{"data": {"products": {"edges": []}}}] * 12
    stored = await stored_hashes(services.engine)
    assert len(stored) == 5, stored
    assert stored <= {sha256_hex(q) for q in queries}
    await assert_invariants(services.engine)


async def test_registrations_per_minute_are_limited_per_client_address(
    services: Services,
) -> None:
    # The limit's one-minute windows start on the minute: fill this one and the next for the
    # first address, so the outcome does not depend on when the test runs.
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0)
    async with services.engine.begin() as conn:
        for window in (start, start + timedelta(minutes=1)):
            await conn.execute(
                text("INSERT INTO rate_limit_hits (key, window_start, count) VALUES (:k, :w, 2)"),
                {"k": "persisted-query:203.0.113.7", "w": window},
            )
    limited, fresh = unique_products_query(), unique_products_query()
    settings: dict[str, Any] = {"rate_limits": "on", "persisted_queries_per_minute": 2}
    async with app_client(services, client=("203.0.113.7", 5000), **settings) as busy:
        response = await busy.post(
            "/graphql", json={"query": limited, "extensions": persisted(limited)}
        )
        assert response.json() == {"data": {"products": {"edges": []}}}  # it still runs
    async with app_client(services, client=("198.51.100.4", 5000), **settings) as quiet:
        response = await quiet.post(
            "/graphql", json={"query": fresh, "extensions": persisted(fresh)}
        )
        assert response.json() == {"data": {"products": {"edges": []}}}
    assert await stored_hashes(services.engine) == {sha256_hex(fresh)}


async def test_with_persisted_queries_off_clients_are_told_to_send_documents(
    services: Services,
) -> None:
    query = unique_products_query()
    async with app_client(services, persisted_queries="off") as off:
        refused = await off.post("/graphql", json={"extensions": persisted(query)})
        assert refused.status_code == 200
        assert refused.json()["errors"][0]["message"] == "PersistedQueryNotSupported"
        assert _codes(refused) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        plain = await off.post("/graphql", json={"query": query})
        assert plain.json() == {"data": {"products": {"edges": []}}}
    assert await stored_hashes(services.engine) == set()
