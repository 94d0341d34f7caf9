"""`LeanExecutor` (joycart/schema/executor.py) answers exactly what Strawberry's executor answers:
the same documents through both, data and errors compared, including every way a field it
completes itself (a plain leaf, a held object or list, a preloaded field) can go wrong, and
awaitables below such fields."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from joycart.schema import schema as joycart_schema
from joycart.schema.executor import LeanExecutor
from joycart.schema.plans import LEAF, OBJECT, field_steps, preloaded


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Inner:
    label: str

    @strawberry.field
    async def slow(self) -> str:
        await asyncio.sleep(0)
        return f"slow {self.label}"

    @strawberry.field
    async def slow_fail(self) -> str:
        await asyncio.sleep(0)
        raise ValueError(f"slow failure {self.label}")


@strawberry.interface
class Named:
    label: str


@strawberry.type
class Tagged(Named):
    tag: str


@strawberry.type
class Shelf:
    """Objects and lists held by attribute, and one preloaded field."""

    inners: list[Inner]
    maybe_inners: list[Inner | None] | None
    strict_inners: list[Inner]
    lonely: Inner | None
    required_inner: Inner
    labels: list[str]
    strict_labels: list[str]
    tagged: Tagged
    named: list[Named]
    held: strawberry.Private[Inner | None] = None
    kept: Inner = strawberry.field(resolver=lambda root: _kept(root), metadata=preloaded("held"))


def _kept(root: Shelf) -> Inner:
    return root.held if root.held is not None else Inner(label="from the resolver")


def shelf(**changes: Any) -> Shelf:
    values: dict[str, Any] = {
        "inners": [Inner(label="a"), Inner(label="b")],
        "maybe_inners": [Inner(label="c"), None],
        "strict_inners": [Inner(label="d")],
        "lonely": None,
        "required_inner": Inner(label="e"),
        "labels": ["x", "y"],
        "strict_labels": ["z"],
        "tagged": Tagged(label="t", tag="T"),
        "named": [Tagged(label="n", tag="N")],
        "held": Inner(label="preloaded"),
    }
    values.update(changes)
    return Shelf(**values)


async def _slow_inner() -> Inner:
    return Inner(label="awaited")


async def _labels() -> AsyncIterator[str]:
    for label in ("p", "q"):
        yield label


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

    @strawberry.field
    def shelves(self) -> list[Shelf]:
        return [shelf(), shelf(held=None)]

    @strawberry.field
    def odd_shelves(self) -> list[Shelf | None]:
        """Each held value in a shape the executor hands back to Strawberry's, or a broken one."""
        return [
            shelf(inners=(Inner(label="tuple"),)),
            shelf(inners=(Inner(label=f"gen {n}") for n in range(2))),
            shelf(inners=[Inner(label="a"), _slow_inner()]),
            shelf(lonely=_slow_inner()),
            shelf(labels=_labels()),
            shelf(inners=7),
            shelf(inners=[Inner(label="a"), None]),
            shelf(maybe_inners=[None, RuntimeError("item error")]),
            shelf(strict_labels=["z", None]),
            shelf(required_inner=None),
            shelf(lonely=RuntimeError("object error")),
            shelf(labels=[{}, "s"]),
        ]


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
    "{ shelves { inners { label } maybeInners { label } strictInners { label } lonely { label }"
    " requiredInner { label } labels strictLabels kept { label } tagged { label tag }"
    " named { label ... on Tagged { tag } } } }",
    "{ shelves { inners { label slow } strictInners { slow } kept { slow } } }",
    "{ shelves { maybeInners { label slowFail } } }",
    "{ shelves { strictInners { slowFail } } items { name } }",
    "{ shelves { a: inners { label } b: inners { l: label __typename } ...S } }"
    " fragment S on Shelf { inners { label @skip(if: true) slow @include(if: true) } }",
    "{ oddShelves { inners { label } maybeInners { label } strictLabels requiredInner { label }"
    " lonely { label } labels } }",
]


def answer(executor: type[StrawberryGraphQLCoreExecutionContext] | None, document: str) -> Any:
    built = strawberry.Schema(query=Query, types=[Tagged], execution_context_class=executor)
    result = asyncio.run(built.execute(document))
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
    # `items`, then per item 10 fields: 6 plain leaves, `inner` and its `label`, the list `tags`,
    # and `computed`, a resolver: the only one that takes the long path.
    assert everything == 1 + 3 * 10
    assert lean == 1 + 3 * 1


def test_held_objects_lists_and_preloaded_fields_skip_the_long_path(
    base_calls: Callable[[], int],
) -> None:
    document = "{ shelves { inners { label } maybeInners { label } kept { label } } }"
    answer(None, document)
    everything = base_calls()
    data, errors = answer(LeanExecutor, document)
    lean = base_calls() - everything
    assert not errors
    assert [s["kept"]["label"] for s in data["shelves"]] == ["preloaded", "from the resolver"]
    # Strawberry's: `shelves`, then per shelf 3 fields, 2 + 1 inner labels and 1 kept label.
    assert everything == 1 + 2 * (3 + 3 + 1)
    # Lean: `shelves`, and `kept` on the second shelf, whose value was not preloaded.
    assert lean == 1 + 1


def test_values_held_in_another_shape_take_the_long_path_and_answer_the_same() -> None:
    data, errors = answer(LeanExecutor, DOCUMENTS[-1])
    shelves = data["oddShelves"]
    assert shelves[0]["inners"] == [{"label": "tuple"}]
    assert shelves[1]["inners"] == [{"label": "gen 0"}, {"label": "gen 1"}]
    assert shelves[2]["inners"] == [{"label": "a"}, {"label": "awaited"}]
    assert shelves[3]["lonely"] == {"label": "awaited"}
    assert shelves[4]["labels"] == ["p", "q"]
    messages = {tuple(e["path"]): e["message"] for e in errors}
    assert "Expected Iterable" in messages[("oddShelves", 5, "inners")]
    assert messages[("oddShelves", 6, "inners", 1)] == (
        "Cannot return null for non-nullable field Shelf.inners."
    )
    assert messages[("oddShelves", 7, "maybeInners", 1)] == "item error"
    assert shelves[7]["maybeInners"] == [None, None]
    assert shelves[6] is None
    assert shelves[8] is None
    assert shelves[9] is None
    assert messages[("oddShelves", 10, "lonely")] == "object error"
    assert "String cannot represent value: {}" in messages[("oddShelves", 11, "labels", 0)]


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


def test_joycart_executes_with_the_lean_executor_and_its_steps_are_found() -> None:
    assert joycart_schema.execution_context_class is LeanExecutor
    types = joycart_schema._schema.type_map
    product = field_steps(types["Product"])  # type: ignore[arg-type]
    assert product["name"].kind == LEAF
    assert product["price"].kind == OBJECT
    assert field_steps(types["ProductImage"])["url"].kind == LEAF  # type: ignore[arg-type]
    # Resolvers that return what `Product.many` preloaded for the page.
    assert product["seller"].preloaded
    assert product["seller"].attribute == "preloaded_seller"
    assert product["images"].preloaded
    assert product["images"].is_list
