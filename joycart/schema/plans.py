"""How `LeanExecutor` completes each field of a selection: one `Step` per response key.

What a field's step is depends on its definition alone, and is worked out once per object
type (`field_steps`); each request then builds the steps of its selection sets once
(graphql-core hands the same grouped field set to every item of a list), adding the response
keys and sub-selections:

- `TYPENAME`: `__typename`, the parent type's name.
- `LEAF`: a plain attribute read (Strawberry's default resolver, `getattr`, no resolver
  function, no field extension, no arguments) whose type is a scalar or enum, maybe non-null.
- `OBJECT`: a plain attribute, or a `preloaded` attribute (below), whose type is an object
  type, a leaf, or a list of either, with any non-null wrappers; the object type has no
  `is_type_of` (Strawberry sets one only on types with interfaces) and its selection defers
  nothing. Its sub-selection is collected here, once.
- `USUAL`: everything else, and every field carrying a directive other than `@skip` and
  `@include`, goes through Strawberry's executor as it would without this module.

`preloaded(attribute)` is field metadata for a resolver that only returns a value its object
already holds when the page that built the object loaded it up front (a product's seller and
images): when that attribute is not `None` the step uses it; otherwise the resolver runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

USUAL, LEAF, OBJECT, TYPENAME = range(4)

PRELOADED = "joycart.preloaded"
_PLAIN_DIRECTIVES = frozenset({"skip", "include"})


# The executor's memoized `collect_subfields`: (object type, field details) -> its sub-selection.
Collect = Callable[[GraphQLObjectType, FieldDetailsList], Any]


def preloaded(attribute: str) -> dict[str, str]:
    """Field metadata: the resolver returns `attribute` when it is not None (see above)."""
    return {PRELOADED: attribute}


class Step(NamedTuple):
    kind: int
    name: str  # the response key
    details: FieldDetailsList
    return_type: GraphQLOutputType | None = None  # the field's type
    attribute: str = ""
    preloaded: bool = False
    where: str = ""  # "Type.field", for graphql-core's messages
    non_null: bool = False  # whether None is an error
    is_list: bool = False
    item_type: GraphQLOutputType | None = None  # a list's item type
    item_non_null: bool = False
    leaf_type: GraphQLLeafType | None = None  # the leaf type, of the field or its items
    object_type: GraphQLObjectType | None = None  # the object type, of the field or its items
    children: tuple[Step, ...] = ()  # the object type's sub-selection
    # Types whose instances are never awaitable, so the executor need not ask: the object
    # type's Python class (unless it defines `__await__`), or the plain scalars for a leaf.
    settled: frozenset[type] = frozenset()


PLAIN_VALUES: frozenset[type] = frozenset({str, int, float, bool})


def attribute_of(field: GraphQLField) -> tuple[str, bool] | None:
    """(attribute, preloaded) when the field's value can be read straight off its object."""
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or field.args:
        return None
    if (
        definition.is_basic_field
        and definition.default_resolver is getattr
        and getattr(field.resolve, "_is_default", False)  # Strawberry's basic-field resolver
    ):
        return definition.python_name, False
    held = definition.metadata.get(PRELOADED)
    if isinstance(held, str) and not definition.extensions:
        return held, True
    return None


def _named(type_: GraphQLOutputType) -> GraphQLObjectType | GraphQLLeafType | None:
    """The named type under at most one list and its non-null wrappers, if a step can
    complete it; None for nested lists, abstract types and types with `is_type_of`."""
    inner = get_nullable_type(type_)
    if isinstance(inner, GraphQLList):
        inner = get_nullable_type(inner.of_type)
    if isinstance(inner, GraphQLObjectType):
        return None if inner.is_type_of is not None else inner
    return inner if is_leaf_type(inner) else None


def build_steps(
    parent_type: GraphQLObjectType,
    grouped: GroupedFieldSet,
    collect: Collect,
) -> tuple[Step, ...]:
    """The steps of one selection set on `parent_type`, and of the selections below them."""
    return tuple(_step(parent_type, name, details, collect) for name, details in grouped.items())


def _step(
    parent_type: GraphQLObjectType, name: str, details: FieldDetailsList, collect: Collect
) -> Step:
    if any(
        d.name.value not in _PLAIN_DIRECTIVES for fd in details for d in fd.node.directives or ()
    ):
        return Step(USUAL, name, details)
    found = field_steps(parent_type).get(details[0].node.name.value)
    if found is None:
        return Step(USUAL, name, details)
    if found.object_type is None:
        return found._replace(name=name, details=details)
    subfields, defers, _ = collect(found.object_type, details)
    if defers:
        return Step(USUAL, name, details)
    children = build_steps(found.object_type, subfields, collect)
    return found._replace(name=name, details=details, children=children)


# Per object type, built on first use: field name -> its step, without response key, field
# details or sub-selection (those come from the operation). Fields not listed are USUAL.
_FIELD_STEPS: WeakKeyDictionary[GraphQLObjectType, dict[str, Step]] = WeakKeyDictionary()


def field_steps(parent_type: GraphQLObjectType) -> dict[str, Step]:
    found = _FIELD_STEPS.get(parent_type)
    if found is None:
        found = {"__typename": Step(TYPENAME, "", [])}
        for field_name, field in parent_type.fields.items():
            step = _field_step(parent_type, field_name, field)
            if step is not None:
                found[field_name] = step
        _FIELD_STEPS[parent_type] = found
    return found


def _field_step(
    parent_type: GraphQLObjectType, field_name: str, field: GraphQLField
) -> Step | None:
    found = attribute_of(field)
    named = _named(field.type)
    if found is None or named is None:
        return None
    attribute, held = found
    nullable = get_nullable_type(field.type)
    item_type = nullable.of_type if isinstance(nullable, GraphQLList) else None
    is_list = item_type is not None
    settled = PLAIN_VALUES
    if isinstance(named, GraphQLObjectType):
        origin = getattr(
            named.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF), "origin", None
        )
        settled = (
            frozenset({origin})
            if isinstance(origin, type) and not hasattr(origin, "__await__")
            else frozenset()
        )
    return Step(
        LEAF if not is_list and not held and is_leaf_type(named) else OBJECT,
        "",
        [],
        field.type,
        attribute,
        held,
        where=f"{parent_type.name}.{field_name}",
        non_null=is_non_null_type(field.type),
        is_list=is_list,
        item_type=item_type,
        item_non_null=item_type is not None and is_non_null_type(item_type),
        leaf_type=named if is_leaf_type(named) else None,
        object_type=named if isinstance(named, GraphQLObjectType) else None,
        settled=settled,
    )
