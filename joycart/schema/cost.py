"""Query cost: what an operation may resolve, priced from its text before anything runs.

The cost of an operation is the number of field values it may resolve. Every selected field
counts once for each object it is selected on, and a list multiplies everything selected below
it by its size:

- a connection (`products`, `orders`, `sellerOrderItems`): its `first` argument, or the
  schema's default (20) when absent. A `first` given by a variable counts as the largest page
  (100): the price depends on the query text alone, so its verdict is cached with validation;
- any other list (`Order.items`, `Order.events`, `Order.refunds`, `Order.automaticRefunds`,
  `OrderItem.refunds`, `Product.images`, `Cart.items`): `ASSUMED_LIST_SIZE` (10).

`__typename` and introspection (`__schema`, `__type`) cost nothing: their size is the schema's,
not the data's. An operation over `COST_LIMIT` is refused by `QueryCostRule` during validation,
before any resolver runs or any SQL is sent, with `extensions.code = QUERY_TOO_COMPLEX`.

Examples: a full catalogue page, `products(first: 100)` with every product field, its seller and
its images, costs 4,604; `orders(first: 100)` under 25 aliases with `events` and
`items { refunds product { images } }` costs 1,132,525. The limit (10,000) also bounds the CPU
one operation can take from the process's event loop: see `joycart.schema.admission`.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    type_from_ast,
)
from graphql.language import VisitorAction
from graphql.language.visitor import SKIP

from joycart.schema.pagination import DEFAULT_PAGE, MAX_PAGE

COST_LIMIT = 10_000
ASSUMED_LIST_SIZE = 10
CODE = "QUERY_TOO_COMPLEX"


def _unwrap(type_: Any) -> tuple[Any, int]:
    """The named type under NonNull/List wrappers, and how many lists wrap it."""
    lists = 0
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        if isinstance(type_, GraphQLList):
            lists += 1
        type_ = type_.of_type
    return type_, lists


def _first(node: FieldNode, field: GraphQLField) -> int | None:
    """The page size a connection field asks for; None for a field that takes no `first`."""
    arg = field.args.get("first")
    if arg is None:
        return None
    for given in node.arguments or ():
        if given.name.value != "first":
            continue
        value = given.value
        if isinstance(value, IntValueNode):
            return max(0, min(int(value.value), MAX_PAGE))
        if isinstance(value, NullValueNode):
            return DEFAULT_PAGE
        return MAX_PAGE  # a variable: priced at the largest page it could ask for
    default = arg.default_value
    return default if isinstance(default, int) else DEFAULT_PAGE


class _Pricer:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments

    def selection_set(
        self,
        parent: Any,
        selections: SelectionSetNode,
        page: int | None,
        visiting: frozenset[str] = frozenset(),
    ) -> int:
        """Cost of `selections` on one object of type `parent`; `page` sizes its lists (the
        edges of a connection whose `first` is `page`)."""
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection, page, visiting)
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    type_from_ast(self.schema, selection.type_condition)
                    if selection.type_condition is not None
                    else parent
                )
                total += self.selection_set(
                    condition or parent, selection.selection_set, page, visiting
                )
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in visiting:  # other rules report these
                    continue
                condition = type_from_ast(self.schema, fragment.type_condition)
                total += self.selection_set(
                    condition or parent, fragment.selection_set, page, visiting | {name}
                )
        return total

    def field(
        self, parent: Any, node: FieldNode, page: int | None, visiting: frozenset[str]
    ) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        field = parent.fields.get(name)
        if field is None:  # an unknown field: FieldsOnCorrectTypeRule reports it
            return 0
        named, lists = _unwrap(field.type)
        size = (page if page is not None else ASSUMED_LIST_SIZE) ** lists if lists else 1
        below = 0
        if node.selection_set is not None:
            below = self.selection_set(named, node.selection_set, _first(node, field), visiting)
        return size * (1 + below)


def _priced(
    schema: GraphQLSchema, document: DocumentNode
) -> list[tuple[OperationDefinitionNode, int]]:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    pricer = _Pricer(schema, fragments)
    return [
        (d, pricer.selection_set(schema.get_root_type(d.operation), d.selection_set, None))
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]


def operation_costs(schema: GraphQLSchema, document: DocumentNode) -> dict[str | None, int]:
    """The cost of each operation in `document`, by operation name."""
    return {(op.name.value if op.name else None): cost for op, cost in _priced(schema, document)}


def too_complex(cost: int, node: OperationDefinitionNode | None = None) -> GraphQLError:
    return GraphQLError(
        f"This operation may cost {cost:,}, over the limit of {COST_LIMIT:,}. Ask for smaller "
        f"pages (`first`) or fewer nested lists: each field counts once per object it is "
        f"selected on, and a list multiplies what it contains by its `first` (default "
        f"{DEFAULT_PAGE}) or by {ASSUMED_LIST_SIZE} when it takes no `first`.",
        node,
        extensions={"code": CODE, "cost": cost, "limit": COST_LIMIT},
    )


class QueryCostRule(ValidationRule):
    """Refuses an operation whose cost exceeds `COST_LIMIT`, before it runs."""

    def enter_document(self, node: DocumentNode, *_args: object) -> VisitorAction:
        for operation, cost in _priced(self.context.schema, node):
            if cost > COST_LIMIT:
                self.report_error(too_complex(cost, operation))
        return SKIP
