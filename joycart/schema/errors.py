"""The GraphQL side of errors: `UserError`, and the one place that maps exceptions to it.

Domain errors (`JoyCartError`) become `UserError`s in the mutation payload. Database races that a
retry resolves are retried; anything else is masked by `MaskInternalErrors` with a request id.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from joycart import errors

log = logging.getLogger("joycart.graphql")

strawberry.enum(errors.ErrorCode, description="Why a mutation was refused.")


@strawberry.type(
    description="Something the caller can fix or should know; `field` names the input."
)
class UserError:
    code: errors.ErrorCode
    message: str
    field: str | None = None

    @classmethod
    def of(cls, exc: errors.JoyCartError) -> UserError:
        return cls(code=exc.code, message=exc.message, field=exc.field)


P = ParamSpec("P")
T = TypeVar("T")

_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock
_MAX_ATTEMPTS = 3


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )


# Input PostgreSQL cannot store, whatever check we might have missed: a client error, not a bug.
_BAD_INPUT_SQLSTATES = {
    "22021": "Text must not contain NUL (\\u0000) characters.",  # character_not_in_repertoire
    "22P05": "Text contains a character that cannot be stored.",  # untranslatable_character
    "22001": "A text value is longer than allowed.",  # string_data_right_truncation
    "22003": "A number is out of range.",  # numeric_value_out_of_range
}


def input_error_for(exc: BaseException) -> errors.InvalidInput | None:
    """The client's mistake behind a database error, if that is what it was."""
    if isinstance(exc, DBAPIError):
        message = _BAD_INPUT_SQLSTATES.get(_sqlstate(exc) or "")
        if message is not None:
            return errors.InvalidInput(message)
    return None


def user_errors(
    payload: Callable[..., T],
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Run a mutation; a `JoyCartError` becomes `payload(errors=[...])`, races are retried."""

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                try:
                    return await fn(*args, **kwargs)
                except errors.JoyCartError as exc:
                    return payload(errors=[UserError.of(exc)])
                except DBAPIError as exc:
                    state = _sqlstate(exc)
                    if state in _RETRYABLE_SQLSTATES and attempt < _MAX_ATTEMPTS:
                        log.info("retrying %s after sqlstate %s", fn.__name__, state)
                        continue
                    if state in _RETRYABLE_SQLSTATES or state == "55P03":  # lock timeout
                        conflict = errors.Conflict(
                            "A concurrent change got there first; try again."
                        )
                        return payload(errors=[UserError.of(conflict)])
                    bad_input = input_error_for(exc)
                    if bad_input is not None:
                        return payload(errors=[UserError.of(bad_input)])
                    raise
            raise AssertionError("unreachable")

        return wrapper

    return decorate


class MaskInternalErrors(SchemaExtension):
    """Hide unexpected exceptions behind a request id; keep validation and limit messages."""

    def on_operation(self) -> Iterator[None]:
        yield
        self._mask(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result a subscription sends is masked the same way, before it is sent."""
        self._mask(result)
        yield

    def _mask(self, result: Any) -> None:
        found = getattr(result, "errors", None)
        if not found:
            return
        context: Any = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        masked: list[GraphQLError] = []
        for error in found:
            original = error.original_error
            if original is None or isinstance(original, GraphQLError):
                masked.append(error)
                continue
            original = input_error_for(original) or original
            if isinstance(original, errors.JoyCartError):
                masked.append(
                    GraphQLError(
                        original.message,
                        nodes=error.nodes,
                        path=error.path,
                        extensions={"code": original.code.value},
                    )
                )
                continue
            log.error(
                "unexpected error in %s (request %s)",
                self.execution_context.operation_name or "operation",
                request_id,
                exc_info=original,
            )
            masked.append(
                GraphQLError(
                    f"Internal server error (request id {request_id}).",
                    nodes=error.nodes,
                    path=error.path,
                    original_error=None,
                    extensions={"code": "INTERNAL", "requestId": request_id},
                )
            )
        result.errors = masked


class QuietSchema(strawberry.Schema):
    """A schema that logs only bugs: a refused token or a too-deep query is the client's news,
    not the operator's (Strawberry would log each with a traceback at ERROR)."""

    def process_errors(
        self, found: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [
            error
            for error in found
            if error.original_error is not None
            and not isinstance(error.original_error, GraphQLError | errors.JoyCartError)
        ]
        super().process_errors(unexpected, execution_context)
