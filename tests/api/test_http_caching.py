"""Cacheable public reads: public + ETag + 304 for anonymous catalogue GETs, private otherwise."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from joycart.bootstrap import Services
from joycart.http.caching import PUBLIC_ROOT_FIELDS, is_public_document
from joycart.schema import schema
from tests.api.http_support import app_client, get_params
from tests.helpers import Account, Api

# What the product owner decided is public. A field missing here is private; adding a field to
# PUBLIC_ROOT_FIELDS without adding it here fails `test_every_root_query_field_...`.
EXPECTED_PUBLIC = {"products", "product"}
PRODUCTS = "{ products(first: 10) { edges { node { id name price { amount } } } } }"
NO_ID = "00000000-0000-0000-0000-000000000000"
PRIVATE_READS = {
    "me": "{ me { id } }",
    "cart": "{ cart { items { quantity } total { amount } } }",
    "orders": "{ orders(first: 5) { edges { cursor } } }",
    "order": f'{{ order(id: "{NO_ID}") {{ id }} }}',
    "sellerOrderItems": "{ sellerOrderItems(first: 5) { edges { cursor } } }",
}


def _assert_public(response: httpx.Response, max_age: int = 5) -> str:
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    assert response.headers["cache-control"] == f"public, max-age={max_age}"
    vary = {v.strip() for v in response.headers["vary"].split(",")}
    assert {"Authorization", "Accept"} <= vary
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert len(etag) > 10
    return etag


def _assert_private(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "private, no-store", response.text
    assert "etag" not in response.headers


async def test_anonymous_products_over_get_is_public_with_an_etag_and_304(
    api: Api, http: httpx.AsyncClient
) -> None:
    seller = await api.register("SELLER")
    await api.create_product(seller, name="Darjeeling")
    first = await http.get("/graphql", params={"query": PRODUCTS})
    etag = _assert_public(first)
    assert first.json()["data"]["products"]["edges"][0]["node"]["name"] == "Darjeeling"

    for condition in (etag, f"W/{etag}", f'"something-else", {etag}', "*"):
        again = await http.get(
            "/graphql", params={"query": PRODUCTS}, headers={"If-None-Match": condition}
        )
        assert again.status_code == 304, condition
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "public, max-age=5"
    stale = await http.get(
        "/graphql", params={"query": PRODUCTS}, headers={"If-None-Match": '"not-it"'}
    )
    assert stale.status_code == 200
    assert stale.content == first.content

    await api.create_product(seller, name="Assam")  # the answer changes, and so does its tag
    changed = await http.get(
        "/graphql", params={"query": PRODUCTS}, headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert _assert_public(changed) != etag
    assert len(changed.json()["data"]["products"]["edges"]) == 2


async def test_product_by_id_and_typename_are_public_and_max_age_is_a_setting(
    api: Api, services: Services
) -> None:
    seller = await api.register("SELLER")
    product_id = await api.create_product(seller)
    async with app_client(services, public_cache_seconds=30) as client:
        one = await client.get(
            "/graphql",
            params=get_params(
                "query($id: ID!) { __typename product(id: $id) { name } }",
                variables={"id": product_id},
            ),
        )
    _assert_public(one, max_age=30)


async def test_the_same_read_with_any_authorization_header_is_private(
    api: Api, http: httpx.AsyncClient
) -> None:
    buyer = await api.register()
    for authorization in (f"Bearer {buyer.token}", "Bearer", ""):
        response = await http.get(
            "/graphql", params={"query": PRODUCTS}, headers={"Authorization": authorization}
        )
        _assert_private(response)


async def _tokens(api: Api) -> dict[str, Account]:
    return {"buyer": await api.register(), "seller": await api.register("SELLER")}


@pytest.mark.parametrize("field", sorted(PRIVATE_READS))
async def test_every_query_reaching_a_private_root_field_is_private_no_store(
    api: Api, http: httpx.AsyncClient, field: str
) -> None:
    accounts = await _tokens(api)
    read = PRIVATE_READS[field]
    inner = read.strip()[1:-1]
    shapes = [
        read,
        "{ " + PRODUCTS.strip()[1:-1] + " " + inner + " }",
        f"query {{ ...Mine }} fragment Mine on Query {{ {inner} }}",
        f"query {{ ... on Query {{ {inner} }} }}",
        f"query Q {{ products(first: 1) {{ edges {{ cursor }} }} ...Deep }} "
        f"fragment Deep on Query {{ ...Deeper }} fragment Deeper on Query {{ {inner} }}",
    ]
    for query in shapes:
        for headers in ({}, *({"Authorization": f"Bearer {a.token}"} for a in accounts.values())):
            response = await http.get("/graphql", params={"query": query}, headers=headers)
            assert response.status_code == 200, response.text
            _assert_private(response)
    # Anonymous `me` answers null without an error: only the rule makes it private.
    anonymous_me = await http.get("/graphql", params={"query": "{ me { id } }"})
    assert anonymous_me.json() == {"data": {"me": None}}
    _assert_private(anonymous_me)


async def test_post_mutations_and_errors_are_never_public(http: httpx.AsyncClient) -> None:
    _assert_private(await http.post("/graphql", json={"query": PRODUCTS}))
    _assert_private(await http.post("/graphql", json={"query": "mutation { __typename }"}))
    too_many = "{ products(first: 500) { edges { cursor } } }"
    errored = await http.get("/graphql", params={"query": too_many})
    assert errored.json()["errors"], errored.text
    _assert_private(errored)
    invalid = await http.get("/graphql", params={"query": "{ products { nope } }"})
    _assert_private(invalid)


def _sample_arguments(field: Any) -> str:
    values = {"ID": f'"{NO_ID}"', "Int": "1", "String": '"x"', "Boolean": "true"}
    parts = []
    for name, argument in field.args.items():
        kind = str(argument.type)
        if kind.endswith("!"):
            parts.append(f"{name}: {values[kind[:-1]]}")
    return f"({', '.join(parts)})" if parts else ""


def _selection(field: Any) -> str:
    named = field.type
    while hasattr(named, "of_type"):
        named = named.of_type
    return " { __typename }" if hasattr(named, "fields") else ""


def _root_fields() -> dict[str, Any]:
    query_type = schema._schema.query_type
    assert query_type is not None
    return dict(query_type.fields)


def test_every_root_query_field_is_classified_public_only_if_allowed() -> None:
    fields = _root_fields()
    assert set(PRIVATE_READS) <= set(fields)
    assert set(PUBLIC_ROOT_FIELDS) == EXPECTED_PUBLIC | {"__typename"}
    public = set()
    for name, field in fields.items():
        query = f"{{ {name}{_sample_arguments(field)}{_selection(field)} }}"
        if is_public_document(query, None):
            public.add(name)
    assert public == EXPECTED_PUBLIC
    assert is_public_document("{ __typename }", None)


async def test_every_root_query_field_over_http_anonymously(
    api: Api, http: httpx.AsyncClient
) -> None:
    seller = await api.register("SELLER")
    await api.create_product(seller)
    # The live server's own schema, by introspection: a field added later is walked too.
    introspection = await http.post(
        "/graphql", json={"query": "{ __schema { queryType { fields { name } } } }"}
    )
    names = {f["name"] for f in introspection.json()["data"]["__schema"]["queryType"]["fields"]}
    fields = _root_fields()
    assert names == set(fields)
    for name in sorted(names):
        field = fields[name]
        query = f"{{ {name}{_sample_arguments(field)}{_selection(field)} }}"
        response = await http.get("/graphql", params={"query": query})
        assert response.status_code == 200, (name, response.text)
        if name in EXPECTED_PUBLIC:
            _assert_public(response)
        else:
            _assert_private(response)
