"""application/graphql-response+json with the spec's status codes; application/json as before."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from joycart.http.negotiation import GRAPHQL_RESPONSE, JSON, negotiate
from tests.api.http_support import AS_GRAPHQL_RESPONSE, AS_JSON, get_params

# (what is wrong, the request body): nothing of these can run.
REQUEST_ERRORS: list[tuple[str, dict[str, Any]]] = [
    ("parse error", {"query": "{ products { edges "}),
    ("validation error", {"query": "{ products { edges { node { nope } } } }"}),
    (
        "variable coercion failure",
        {"query": "query($id: ID!) { product(id: $id) { id } }", "variables": {"id": None}},
    ),
    (
        "variable of the wrong type",
        {
            "query": "query($n: Int) { products(first: $n) { edges { cursor } } }",
            "variables": {"n": "twenty"},
        },
    ),
]


@pytest.mark.parametrize(("what", "body"), REQUEST_ERRORS, ids=[w for w, _ in REQUEST_ERRORS])
async def test_request_errors_are_400_without_data_under_graphql_response_json(
    http: httpx.AsyncClient, what: str, body: dict[str, Any]
) -> None:
    response = await http.post("/graphql", json=body, headers=AS_GRAPHQL_RESPONSE)
    assert response.status_code == 400, (what, response.text)
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    answer = response.json()
    assert "data" not in answer, answer
    assert answer["errors"], answer


@pytest.mark.parametrize(("what", "body"), REQUEST_ERRORS, ids=[w for w, _ in REQUEST_ERRORS])
async def test_request_errors_keep_200_and_null_data_under_application_json(
    http: httpx.AsyncClient, what: str, body: dict[str, Any]
) -> None:
    for headers in (AS_JSON, {}, {"Accept": "*/*"}):
        response = await http.post("/graphql", json=body, headers=headers)
        assert response.status_code == 200, (what, headers, response.text)
        assert response.headers["content-type"] == "application/json"
        answer = response.json()
        assert answer["data"] is None, answer
        assert answer["errors"], answer


async def test_the_same_request_errors_over_get(http: httpx.AsyncClient) -> None:
    for what, body in REQUEST_ERRORS:
        params = get_params(
            body["query"], variables=body.get("variables"), operation_name=body.get("operationName")
        )
        strict = await http.get("/graphql", params=params, headers=AS_GRAPHQL_RESPONSE)
        assert strict.status_code == 400, (what, strict.text)
        assert "data" not in strict.json()
        legacy = await http.get("/graphql", params=params, headers=AS_JSON)
        assert legacy.status_code == 200, (what, legacy.text)
        assert legacy.json()["data"] is None


async def test_execution_results_are_200_under_graphql_response_json(
    http: httpx.AsyncClient,
) -> None:
    ok = await http.post("/graphql", json={"query": "{ __typename }"}, headers=AS_GRAPHQL_RESPONSE)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert ok.json() == {"data": {"__typename": "Query"}}
    # A field error is an execution result: the operation ran, `data` is there.
    refused = await http.post(
        "/graphql",
        json={"query": "{ me { id } }"},
        headers={**AS_GRAPHQL_RESPONSE, "Authorization": "Bearer nope"},
    )
    assert refused.status_code == 200, refused.text
    assert "data" in refused.json()
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_malformed_http_requests_are_400_with_graphql_errors_in_both_media_types(
    http: httpx.AsyncClient,
) -> None:
    bad: list[dict[str, Any]] = [
        {"content": b'{ "not json', "headers": {"Content-Type": "application/json"}},
        {"json": {"query": {"an": "object"}}},
        {"json": {"query": "{ __typename }", "operationName": 7}},
        {"json": {"query": "{ __typename }", "variables": "[]"}},
        {"json": {"notquery": "{ __typename }"}},
        {"json": {"query": "query A { __typename }", "operationName": "B"}},  # none to run
        {"json": [{"query": "{ __typename }"}]},
    ]
    for media in (AS_GRAPHQL_RESPONSE, AS_JSON):
        for request in bad:
            headers = {**media, **request.get("headers", {})}
            kwargs = {k: v for k, v in request.items() if k != "headers"}
            response = await http.post("/graphql", headers=headers, **kwargs)
            assert response.status_code == 400, (request, response.text)
            assert response.headers["content-type"].startswith(media["Accept"])
            assert "data" not in response.json()
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),  # Apollo Client 4
        (
            f"{GRAPHQL_RESPONSE}, application/graphql+json, application/json, text/event-stream",
            GRAPHQL_RESPONSE,
        ),  # urql 6
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
        (f"{GRAPHQL_RESPONSE};q=bad", JSON),
        (f"text/html, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    ],
)
def test_negotiation_prefers_what_the_client_prefers(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected
