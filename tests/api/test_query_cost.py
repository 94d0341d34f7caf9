"""Priced queries: an operation over the cost limit is refused before any SQL runs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse, specified_rules, validate
from sqlalchemy import event, text

from joycart.bootstrap import Services
from joycart.schema import _RULES, schema
from joycart.schema.cost import COST_LIMIT, QueryCostRule, operation_costs
from joycart.schema.loaders import EVENTS_PER_ORDER
from tests.api.http_support import get_params, persisted
from tests.helpers import Api

README = Path(__file__).resolve().parents[2] / "README.md"
ORDER_FIELDS = "id events { kind } items { id refunds { id } product { images { url } } }"
HEAVY = (
    "{ "
    + " ".join(
        f"a{i}: orders(first: 100) {{ edges {{ node {{ {ORDER_FIELDS} }} }} }}" for i in range(25)
    )
    + " }"
)
CATALOGUE_PAGE = """{ products(first: 100) { edges { cursor node { id name description
  price { amount currency } stock createdAt seller { id name role } images { id url } } }
  pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
def statements(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while the test runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    event.listen(services.engine.sync_engine, "before_cursor_execute", record)
    yield sent
    event.remove(services.engine.sync_engine, "before_cursor_execute", record)


def _cost(document: str) -> int:
    return max(operation_costs(schema._schema, parse(document)).values())


def _readme_operations() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(), flags=re.DOTALL)


async def test_the_heavy_query_is_refused_before_any_sql_with_its_cost_and_the_limit(
    api: Api, statements: list[str]
) -> None:
    buyer = await api.register()
    statements.clear()

    response = await api.raw(HEAVY, token=buyer.token)

    assert statements == []
    body = response.json()
    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert f"{_cost(HEAVY):,}" in error["message"]
    assert f"{COST_LIMIT:,}" in error["message"]
    # The counter does count: one alias of it, on a small page, runs SQL.
    small = f"{{ orders(first: 5) {{ edges {{ node {{ {ORDER_FIELDS} }} }} }} }}"
    assert _cost(small) <= COST_LIMIT
    assert "errors" not in (await api.raw(small, token=buyer.token)).json()
    assert statements != []


async def test_fragments_and_variables_do_not_hide_the_cost(
    api: Api, statements: list[str]
) -> None:
    buyer = await api.register()
    statements.clear()
    page = (
        "fragment Page on OrderConnection { edges { node { ... on Order { "
        + ORDER_FIELDS
        + " } } } }"
    )
    spread = (
        "query { ...Lists } fragment Lists on Query { "
        "a: orders(first: 100) { ...Page } b: orders(first: 100) { ...Page } } " + page
    )
    # A `first` from a variable is priced at the largest page: the verdict depends on the text.
    variable = f"query($n: Int) {{ orders(first: $n) {{ edges {{ node {{ {ORDER_FIELDS} }} }} }} }}"
    for document, variables in ((spread, None), (variable, {"n": 1})):
        response = await api.raw(document, variables, token=buyer.token)
        codes = [e["extensions"]["code"] for e in response.json()["errors"]]
        assert codes == ["QUERY_TOO_COMPLEX"], document
    assert statements == []


async def test_the_readme_queries_and_a_full_catalogue_page_pass_with_room_to_spare(
    api: Api,
) -> None:
    operations = _readme_operations()
    assert len(operations) >= 8  # the walk-through's examples were found
    rules = [*specified_rules, *_RULES]
    for document in operations:
        assert validate(schema._schema, parse(document), rules) == [], document
        assert _cost(document) * 2 <= COST_LIMIT, document
        if document.lstrip().startswith(("{", "query")):
            body = (await api.raw(document)).json()
            codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
            assert "QUERY_TOO_COMPLEX" not in codes, (document, body)
    assert _cost(CATALOGUE_PAGE) * 2 <= COST_LIMIT
    page = (await api.raw(CATALOGUE_PAGE)).json()
    assert "errors" not in page, page
    assert f"{COST_LIMIT:,}" in README.read_text()  # the README states the limit


async def test_the_price_is_computed_once_per_query_text_and_cached_with_validation(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    priced: list[int] = []
    original = QueryCostRule.enter_document

    def counting(self: QueryCostRule, *args: Any) -> Any:
        priced.append(1)
        return original(self, *args)

    monkeypatch.setattr(QueryCostRule, "enter_document", counting)
    document = f"{{ n{uuid.uuid4().hex}: products(first: 3) {{ edges {{ node {{ id }} }} }} }}"
    heavy = HEAVY.replace("a0:", f"x{uuid.uuid4().hex}:")
    for _ in range(3):
        assert "errors" not in (await api.raw(document)).json()
        refused = (await api.raw(heavy)).json()
        assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert len(priced) == 2  # validated once per text: the refusal is cached too


async def test_order_lists_load_in_one_statement_per_level_and_events_are_capped(
    api: Api, services: Services, statements: list[str]
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register()
    product = await api.create_product(seller, stock=50)
    for _ in range(6):
        await api.add_to_cart(buyer, product)
        await api.checkout(buyer)
    async with services.engine.begin() as conn:
        newest = await conn.scalar(text("SELECT id FROM orders ORDER BY created_at DESC LIMIT 1"))
        await conn.execute(
            text(
                "INSERT INTO order_events (order_id, kind, actor, detail) "
                "SELECT :o, 'NOTE_' || n, 'test', '{}' FROM generate_series(1, :n) n"
            ),
            {"o": newest, "n": EVENTS_PER_ORDER + 5},
        )
    page = """query($n: Int!) {
        orders(first: $n) { edges { node { id events { kind } items { id } } } } }"""

    counts = []
    for first in (1, 6):
        statements.clear()
        data = await api.gql(page, {"n": first}, token=buyer.token)
        counts.append(len(statements))
    assert counts[0] == counts[1]  # the same statements for one order or six
    events = [e["kind"] for e in data["orders"]["edges"][0]["node"]["events"]]
    assert len(events) == EVENTS_PER_ORDER  # the latest ones, oldest first
    assert events[-1] == f"NOTE_{EVENTS_PER_ORDER + 5}"
    assert events[0] == "NOTE_6"


def test_synchronous_execution_still_works_beside_the_admission_gate() -> None:
    # The gate waits in `execute`; `execute_sync` (introspection, tools) never reaches it.
    assert schema.execute_sync("{ __typename }").data == {"__typename": "Query"}
    introspected = schema.execute_sync("{ __schema { queryType { name } } }")
    assert introspected.errors is None


async def test_the_cost_limit_holds_over_get_and_for_persisted_queries(
    http: httpx.AsyncClient, statements: list[str]
) -> None:
    statements.clear()
    over_get = await http.get("/graphql", params={"query": HEAVY})
    assert [e["extensions"]["code"] for e in over_get.json()["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert statements == []
    stored = await http.post("/graphql", json={"query": HEAVY, "extensions": persisted(HEAVY)})
    assert [e["extensions"]["code"] for e in stored.json()["errors"]] == ["QUERY_TOO_COMPLEX"]
    by_hash = await http.get("/graphql", params=get_params(extensions=persisted(HEAVY)))
    codes = [e["extensions"]["code"] for e in by_hash.json()["errors"]]
    assert codes == ["PERSISTED_QUERY_NOT_FOUND"]  # a refused document is never stored
