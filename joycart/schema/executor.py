"""Strawberry's GraphQL executor with a short path for fields that need no resolver.

A catalogue page of 50 products completes about 800 fields: about 600 are a scalar or enum
attribute read off a Strawberry object (`name`, `price.amount`, `images.url`), and most of the
rest are objects held by another object (`edges`, `node`, `price`) or preloaded for the page
(`seller`, `images`). For each one, graphql-core and Strawberry build a 17-slot resolve info
and a response path, look up the arguments, call Strawberry's resolver wrapper (which calls
`getattr`), check twice whether the result is awaitable and recurse through the non-null and
list wrappers before serializing. Profiled, that was most of the page's execution time
(bench/README.md, "Catalogue").

`joycart.schema.plans` decides once per selection set which fields need none of that. For
those, this executor reads the attribute and completes the value itself, with graphql-core's
own rules and messages: `None` on a non-null field or list item is the same field error
("Cannot return null for non-nullable field T.f."), an error propagates to the nearest
nullable field or item and is located at the same path, a value the scalar cannot serialize is
the same error, awaitables below are gathered the same way, and a value it would not complete
itself (an awaitable, a list that is not a `list`, an unloaded preloaded field) goes through
Strawberry's executor after all. Every other field, and every field when a schema extension
wraps resolvers (a `resolve` hook, graphql-core middleware) or the operation defers or streams,
goes through Strawberry's executor unchanged. tests/test_executor.py runs the same documents
through both executors and compares data and errors.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from graphql import GraphQLObjectType, GraphQLOutputType
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined, UndefinedType, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from joycart.schema.plans import LEAF, OBJECT, PLAIN_VALUES, TYPENAME, Step, build_steps


class LeanExecutor(StrawberryGraphQLCoreExecutionContext):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wrapped = self.middleware_manager is not None and self.middleware_manager.middlewares
        self._lean = not wrapped
        # (parent type, id of a grouped field set) -> (that set, kept alive; its steps)
        self._plans: dict[tuple[str, int], tuple[GroupedFieldSet, tuple[Step, ...]]] = {}

    def steps(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> tuple[Step, ...]:
        key = (parent_type.name, id(grouped))
        cached = self._plans.get(key)
        if cached is not None and cached[0] is grouped:
            return cached[1]
        found = build_steps(parent_type, grouped, self.collect_subfields)
        self._plans[key] = (grouped, found)
        return found

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if position_context is not None or not self._lean:  # @defer/@stream, or wrapped
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        steps = self.steps(parent_type, grouped_field_set)
        return self._run(parent_type, source_value, path, steps)

    def _run(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        steps: tuple[Step, ...],
    ) -> AwaitableOrValue[dict[str, Any]]:
        """graphql-core's `execute_fields`, with the steps this executor completes itself."""
        results: dict[str, Any] = {}
        awaiting: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for step in steps:
                kind = step.kind
                if kind == LEAF:
                    try:
                        value = getattr(source, step.attribute)
                        if type(value) in PLAIN_VALUES:
                            results[step.name] = self.complete_leaf_value(step.leaf_type, value)  # type: ignore[arg-type]
                            continue
                        if value is not None and value is not Undefined and is_awaitable(value):
                            result = self._usual(parent_type, source, path, step)
                        else:
                            result = self._one(step, None, value, step.non_null)
                    except Exception as raw_error:
                        self._field_error(raw_error, parent_type, path, step)
                        result = None
                elif kind == OBJECT:
                    result = self._object(parent_type, source, path, step)
                elif kind == TYPENAME:
                    result = parent_type.name
                else:
                    result = self._usual(parent_type, source, path, step)
                    if result is Undefined:
                        continue
                results[step.name] = result
                if is_awaitable(result):
                    awaiting.append(step.name)
        except Exception:
            if awaiting:
                self.settle_in_background([results[name] for name in awaiting])
            raise
        if not awaiting:
            return results
        return self._gather_fields(results, awaiting)

    def _usual(
        self, parent_type: GraphQLObjectType, source: Any, path: Path | None, step: Step
    ) -> AwaitableOrValue[Any] | UndefinedType:
        field_path = Path(path, step.name, parent_type.name)
        return self.execute_field(parent_type, source, step.details, field_path, None)

    def _field_error(
        self, raw_error: Exception, parent_type: GraphQLObjectType, path: Path | None, step: Step
    ) -> None:
        field_path = Path(path, step.name, parent_type.name)
        self.handle_field_error(raw_error, _type(step), step.details, field_path)

    def _object(
        self, parent_type: GraphQLObjectType, source: Any, path: Path | None, step: Step
    ) -> Any:
        field_path = Path(path, step.name, parent_type.name)
        try:
            value = getattr(source, step.attribute)
            if not self._completes(step, value):
                # An unloaded preloaded field, an awaitable, another kind of iterable.
                return self.execute_field(parent_type, source, step.details, field_path, None)
            if step.is_list and value is not None and value is not Undefined:
                completed = self._list(step, field_path, value)
            else:
                completed = self._one(step, field_path, value, step.non_null)
        except Exception as raw_error:
            self.handle_field_error(raw_error, _type(step), step.details, field_path)
            return None
        if self.is_awaitable(completed):
            return self._awaited(completed, _type(step), step.details, field_path)
        return completed

    def _completes(self, step: Step, value: Any) -> bool:
        """Whether this executor completes `value` itself rather than Strawberry's."""
        if value is None or value is Undefined:
            return not step.preloaded
        if not step.is_list:
            return type(value) in step.settled or not self.is_awaitable(value)
        if type(value) is not list:
            return False
        settled, is_awaitable = step.settled, self.is_awaitable
        return not any(type(item) not in settled and is_awaitable(item) for item in value)

    def _one(self, step: Step, path: Path | None, value: Any, non_null: bool) -> Any:
        """graphql-core's `complete_value` for one object or leaf, maybe non-null."""
        if isinstance(value, Exception):
            raise value
        if value is None or value is Undefined:
            if non_null:
                raise TypeError(f"Cannot return null for non-nullable field {step.where}.")
            return None
        if step.object_type is not None:
            return self._run(step.object_type, value, path, step.children)
        return self.complete_leaf_value(step.leaf_type, value)  # type: ignore[arg-type]

    def _list(self, step: Step, path: Path, items: list[Any]) -> AwaitableOrValue[list[Any]]:
        """graphql-core's `complete_iterable_value` for a list of objects or leaves."""
        completed: list[Any] = []
        awaiting: list[int] = []
        item_type = step.item_type
        assert item_type is not None
        try:
            for index, item in enumerate(items):
                item_path = Path(path, index, None)
                try:
                    value = self._one(step, item_path, item, step.item_non_null)
                    if self.is_awaitable(value):
                        value = self._awaited(value, item_type, step.details, item_path)
                        awaiting.append(index)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, step.details, item_path)
                    value = None
                completed.append(value)
        except Exception:
            if awaiting:
                self.settle_in_background([completed[index] for index in awaiting])
            raise
        if not awaiting:
            return completed
        return self._gather_items(completed, awaiting)

    def _awaited(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
    ) -> Awaitable[Any]:
        async def await_completed() -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, return_type, details, path)
                return None

        return await_completed()

    @staticmethod
    async def _gather_fields(results: dict[str, Any], awaiting: list[str]) -> dict[str, Any]:
        if len(awaiting) == 1:
            results[awaiting[0]] = await results[awaiting[0]]
        else:
            done = await gather_with_cancel(*(results[name] for name in awaiting))
            results.update(zip(awaiting, done, strict=True))
        return results

    @staticmethod
    async def _gather_items(completed: list[Any], awaiting: list[int]) -> list[Any]:
        done = await gather_with_cancel(*(completed[index] for index in awaiting))
        for index, value in zip(awaiting, done, strict=True):
            completed[index] = value
        return completed


def _type(step: Step) -> GraphQLOutputType:
    assert step.return_type is not None
    return step.return_type
