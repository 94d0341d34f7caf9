"""GraphQL over GET: queries run, mutations never do, and every limit holds as for POST."""

from __future__ import annotations

import httpx

from joycart.bootstrap import Services
from joycart.schema import MAX_DEPTH
from tests.api.http_support import (
    AS_GRAPHQL_RESPONSE,
    AS_JSON,
    count_users,
    get_params,
    nested_order_query,
    sql_statements,
)
from tests.helpers import Api

REGISTER = """mutation Register($input: RegisterInput!) {
    register(input: $input) { user { id } errors { code } } }"""
REGISTER_INPUT = {
    "input": {"email": "get@example.com", "password": "correct horse battery", "name": "G"}
}


async def test_get_query_answers_200_with_data(api: Api, http: httpx.AsyncClient) -> None:
    seller = await api.register("SELLER")
    product_id = await api.create_product(seller, name="Darjeeling", price=45_000)
    query = "query One($id: ID!) { product(id: $id) { id name price { amount currency } } }"
    for headers in (AS_JSON, AS_GRAPHQL_RESPONSE, {}):
        response = await http.get(
            "/graphql",
            params=get_params(query, variables={"id": product_id}, operation_name="One"),
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "data": {
                "product": {
                    "id": product_id,
                    "name": "Darjeeling",
                    "price": {"amount": 45_000, "currency": "INR"},
                }
            }
        }


async def test_get_mutation_is_405_with_allow_post_and_writes_nothing(
    http: httpx.AsyncClient, services: Services
) -> None:
    params = get_params(REGISTER, variables=REGISTER_INPUT)
    for headers in (AS_JSON, AS_GRAPHQL_RESPONSE, {"Accept": "text/html"}, {}):
        response = await http.get("/graphql", params=params, headers=headers)
        assert response.status_code == 405, (headers, response.text)
        assert response.headers["allow"] == "POST"
        assert response.headers["cache-control"] == "private, no-store"
        assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
        assert "data" not in response.json()
    assert await count_users(services.engine) == 0
    # The very same request over POST does write: the count above can fail.
    posted = await http.post("/graphql", json={"query": REGISTER, "variables": REGISTER_INPUT})
    assert posted.json()["data"]["register"]["errors"] == [], posted.text
    assert await count_users(services.engine) == 1


async def test_get_picks_the_named_operation_and_refuses_only_a_chosen_mutation(
    http: httpx.AsyncClient, services: Services
) -> None:
    document = REGISTER + " query Ping { __typename }"
    ping = await http.get(
        "/graphql", params=get_params(document, operation_name="Ping", variables=REGISTER_INPUT)
    )
    assert ping.json() == {"data": {"__typename": "Query"}}
    register = await http.get(
        "/graphql",
        params=get_params(document, operation_name="Register", variables=REGISTER_INPUT),
    )
    assert register.status_code == 405
    assert await count_users(services.engine) == 0


async def test_graphiql_still_answers_a_browser_in_development(http: httpx.AsyncClient) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    page = await http.get("/graphql", headers=browser)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    # A browser that names a query gets the answer, not the page.
    answer = await http.get("/graphql", params={"query": "{ __typename }"}, headers=browser)
    assert answer.json() == {"data": {"__typename": "Query"}}


async def test_get_without_a_query_is_400_not_graphiql(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "*/*"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_url_over_eight_kilobytes_is_414_and_runs_nothing(
    http: httpx.AsyncClient, services: Services
) -> None:
    def long_alias(length: int) -> str:  # letters only: the URL is as long as the query
        return "{ a" + "x" * length + ": me { id } }"

    with sql_statements(services.engine) as statements:
        response = await http.get("/graphql", params={"query": long_alias(8 * 1024)})
    assert response.status_code == 414
    assert response.json()["errors"][0]["extensions"]["code"] == "URI_TOO_LONG"
    assert statements == []
    just_under = await http.get("/graphql", params={"query": long_alias(7 * 1024)})
    assert just_under.status_code == 200
    assert list(just_under.json()["data"].values()) == [None]


async def test_depth_and_alias_limits_hold_over_get(http: httpx.AsyncClient) -> None:
    allowed = await http.get("/graphql", params={"query": nested_order_query(MAX_DEPTH - 2)})
    assert allowed.json() == {"data": {"order": None}}
    deep = await http.get("/graphql", params={"query": nested_order_query(20)})
    assert any("depth" in e["message"].lower() for e in deep.json()["errors"]), deep.text
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    many = await http.get("/graphql", params={"query": aliases}, headers=AS_GRAPHQL_RESPONSE)
    assert many.status_code == 400
    assert any("aliases" in e["message"] for e in many.json()["errors"]), many.text
    assert "data" not in many.json()


async def test_cors_applies_to_get_as_to_post(http: httpx.AsyncClient) -> None:
    query = {"query": "{ __typename }"}
    allowed = await http.get("/graphql", params=query, headers={"Origin": "http://localhost:5173"})
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    other = await http.get("/graphql", params=query, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    posted = await http.post("/graphql", json=query, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in posted.headers
