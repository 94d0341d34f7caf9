"""A Strawberry extension that times each GraphQL operation under its (bounded) name."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from joycart.observability import logs, metrics


class OperationMetrics(SchemaExtension):
    """Parse, validation and execution time per operation name; the name goes into the logs."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        context = self.execution_context
        yield
        # Only now is the document parsed: the name may come from it rather than the request.
        label = metrics.operation_label(context.operation_name)
        try:
            kind = context.operation_type.value
        except Exception:  # a document that did not parse has no operation type
            kind = "invalid"
        metrics.GRAPHQL_DURATION.labels(label, kind).observe(time.perf_counter() - started)

    def on_execute(self) -> Iterator[None]:
        logs.bind(graphql_operation=metrics.operation_label(self.execution_context.operation_name))
        yield
