"""`LeanExecutor` (joycart/schema/executor.py) answers exactly what Strawberry's executor answers:
the same documents through both, data and errors compared, including every way a plain leaf
field can go wrong."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from joycart.schema import schema as joycart_schema
from joycart.schema.executor import LeanExecutor, leaves


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Inner:
    label: str


@strawberry.type
class Item:
    name: str
    maybe: int | None
    colour: Colour
    when: datetime
    required: str
    count: int
    inner: Inner
    tags: list[str]

    @strawberry.field
    def computed(self) -> str:
        return self.name.upper()


class Exploding:
    """Duck-typed like Item, but reading `name` raises (a property, not a stored value)."""

    maybe = None
    colour = Colour.BLUE
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    required = "r"
    count = 1
    inner = Inner(label="i")
    tags: list[str] = []

    @property
    def name(self) -> str:
        raise ValueError("name exploded")


def good(n: int) -> Item:
    return Item(
        name=f"item {n}",
        maybe=n if n % 2 else None,
        colour=Colour.RED,
        when=datetime(2026, 12, n + 1, tzinfo=UTC),
        required="yes",
        count=n,
        inner=Inner(label=f"inner {n}"),
        tags=["a", "b"],
    )


def broken(**changes: Any) -> Item:
    item = good(1)
    for name, value in changes.items():
        object.__setattr__(item, name, value)
    return item


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [good(n) for n in range(3)]

    @strawberry.field
    def missing(self) -> Item | None:
        return broken(required=None)

    @strawberry.field
    def not_an_int(self) -> Item | None:
        return broken(count="twelve")

    @strawberry.field
    def error_value(self) -> Item | None:
        return broken(required=RuntimeError("stored error"))

    @strawberry.field
    def exploding(self) -> Item | None:
        return Exploding()  # type: ignore[return-value]

    @strawberry.field
    def strict(self) -> list[Item]:
        return [good(0), broken(required=None)]


DOCUMENTS = [
    "{ items { name maybe colour when required count computed inner { label } tags } }",
    "{ items { alias: name, name ...F ... on Item { count } } } fragment F on Item { maybe }",
    "{ items { name @skip(if: true) count @include(if: false) maybe } }",
    "{ __typename items { __typename name } }",
    "{ missing { name required } }",
    "{ notAnInt { name count } }",
    "{ errorValue { name required } }",
    "{ exploding { name count } }",
    "{ strict { name required } items { name } }",
]


def answer(executor: type[StrawberryGraphQLCoreExecutionContext] | None, document: str) -> Any:
    built = strawberry.Schema(query=Query, execution_context_class=executor)
    result = built.execute_sync(document)
    return result.data, [error.formatted for error in result.errors or []]


@pytest.fixture
def base_calls() -> Iterator[Callable[[], int]]:
    """How many fields went through Strawberry's own `execute_field`."""
    calls = 0
    original = StrawberryGraphQLCoreExecutionContext.execute_field

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)

    StrawberryGraphQLCoreExecutionContext.execute_field = counting  # type: ignore[method-assign]
    try:
        yield lambda: calls
    finally:
        StrawberryGraphQLCoreExecutionContext.execute_field = original  # type: ignore[method-assign]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_lean_executor_answers_exactly_what_strawberrys_does(document: str) -> None:
    lean = answer(LeanExecutor, document)
    assert lean == answer(None, document)
    assert lean[0] is not None or lean[1]  # every document answers something


def test_broken_leaves_are_field_errors_with_graphql_cores_messages() -> None:
    data, errors = answer(LeanExecutor, DOCUMENTS[4])
    assert data == {"missing": None}
    assert errors == [
        {
            "message": "Cannot return null for non-nullable field Item.required.",
            "locations": [{"line": 1, "column": 18}],
            "path": ["missing", "required"],
        }
    ]
    assert answer(LeanExecutor, DOCUMENTS[7])[1][0]["message"] == "name exploded"
    assert answer(LeanExecutor, DOCUMENTS[6])[1][0]["message"] == "stored error"
    assert (
        "Int cannot represent non-integer value"
        in answer(LeanExecutor, DOCUMENTS[5])[1][0]["message"]
    )


def test_plain_leaves_skip_the_long_path_and_everything_else_takes_it(
    base_calls: Callable[[], int],
) -> None:
    answer(None, DOCUMENTS[0])
    everything = base_calls()
    answer(LeanExecutor, DOCUMENTS[0])
    lean = base_calls() - everything
    # `items`, then per item 10 fields: 7 plain leaves (name maybe colour when required count,
    # inner.label) and 3 that take the long path (computed, inner, tags).
    assert everything == 1 + 3 * 10
    assert lean == 1 + 3 * 3


class Counting(SchemaExtension):
    seen = 0

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        Counting.seen += 1
        return _next(root, info, *args, **kwargs)


def test_an_extension_that_wraps_resolvers_still_sees_every_field() -> None:
    built = strawberry.Schema(
        query=Query, extensions=[Counting], execution_context_class=LeanExecutor
    )
    Counting.seen = 0
    assert not built.execute_sync(DOCUMENTS[0]).errors
    assert Counting.seen == 1 + 3 * 10


def test_joycart_executes_with_the_lean_executor_and_its_leaves_are_found() -> None:
    assert joycart_schema.execution_context_class is LeanExecutor
    found = leaves(joycart_schema._schema)
    assert {("Product", "name"), ("Money", "amount"), ("ProductImage", "url")} <= set(found)
    assert ("Product", "seller") not in found  # a resolver: the usual path
    assert ("Product", "images") not in found
