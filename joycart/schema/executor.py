"""Strawberry's GraphQL executor with a short path for plain leaf fields.

A catalogue page of 50 products completes about 800 fields, and about 600 of them are a scalar
or enum attribute read off a Strawberry object (`name`, `price.amount`, `images.url`). For each
one, graphql-core and Strawberry build a 17-slot resolve info, look up the arguments, call
Strawberry's basic-field resolver (which calls `getattr`), check twice whether the result is
awaitable and recurse through the non-null wrapper before serializing. Profiled, that was most
of the page's execution time (bench/README.md, "Catalogue").

For exactly those fields, a plain attribute read with Strawberry's default resolver (`getattr`,
no resolver function, no field extension, no arguments) whose type is a scalar or enum, maybe
non-null, this executor reads the attribute and serializes it itself, with graphql-core's own
rules and messages: `None` on a non-null field is the same field error ("Cannot return null for
non-nullable field T.f."), an exception is located at the field's path like any resolver's, a
value the scalar cannot serialize is the same error. Every other field, and every field when a
schema extension wraps resolvers (a `resolve` hook, graphql-core middleware), goes through
Strawberry's executor unchanged. tests/schema/test_executor.py runs the same documents through
both executors and compares data and errors.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLSchema,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path, Undefined, UndefinedType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField


class _Leaf(NamedTuple):
    attribute: str
    leaf_type: GraphQLLeafType
    non_null: bool
    field: GraphQLField


# Per schema, built on first use: (object type name, field name) -> how to read the leaf.
_LEAVES: WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], _Leaf]] = WeakKeyDictionary()


def _leaf(field: GraphQLField) -> _Leaf | None:
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        not isinstance(definition, StrawberryField)
        or not definition.is_basic_field
        or definition.default_resolver is not getattr
        or not getattr(field.resolve, "_is_default", False)  # Strawberry's basic-field resolver
        or field.args
    ):
        return None
    nullable = get_nullable_type(field.type)
    if not is_leaf_type(nullable):
        return None
    return _Leaf(definition.python_name, nullable, is_non_null_type(field.type), field)


def leaves(schema: GraphQLSchema) -> dict[tuple[str, str], _Leaf]:
    """The plain leaf fields of `schema`, by (object type, field)."""
    found = _LEAVES.get(schema)
    if found is None:
        found = {
            (type_.name, name): leaf
            for type_ in schema.type_map.values()
            if isinstance(type_, GraphQLObjectType)
            for name, field in type_.fields.items()
            if (leaf := _leaf(field)) is not None
        }
        _LEAVES[schema] = found
    return found


class LeanExecutor(StrawberryGraphQLCoreExecutionContext):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wrapped = self.middleware_manager is not None and self.middleware_manager.middlewares
        self._leaves = {} if wrapped else leaves(self.schema)

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any] | UndefinedType:
        field_name = field_details_list[0].node.name.value
        leaf = self._leaves.get((parent_type.name, field_name))
        if leaf is None:
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        try:
            value = getattr(source, leaf.attribute)
            if value is None or value is Undefined:
                if leaf.non_null:
                    where = f"{parent_type.name}.{field_name}"
                    raise TypeError(f"Cannot return null for non-nullable field {where}.")
                return None
            if isinstance(value, Exception):
                raise value
            if self.is_awaitable(value):  # not a plain attribute after all: the usual path
                return super().execute_field(
                    parent_type, source, field_details_list, path, position_context
                )
            return self.complete_leaf_value(leaf.leaf_type, value)
        except Exception as raw_error:
            self.handle_field_error(raw_error, leaf.field.type, field_details_list, path)
            return None
