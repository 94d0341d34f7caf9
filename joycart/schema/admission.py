"""Admission by cost: expensive operations take turns; light ones never wait.

Executing GraphQL is CPU work on the process's one event loop. Six operations just under the
cost limit, run at once, make every other request on that loop (`/readyz`, a product page) wait
behind seconds of object completion, whatever the pool holds. So an operation whose cost
(`joycart.schema.cost`) is over `HEAVY_COST` waits, before it executes, until the heavy
operations running in this process leave room for it: together they may cost at most
`HEAVY_BUDGET` (one operation at the cost limit). While it waits it holds nothing: no
connection, no CPU. Waiters are served first come, first served. The gate is the schema's
`execute` (`AdmittingSchema`), which every transport calls with the query text.

Light operations (cost at most `HEAVY_COST`: a full catalogue page of 100 products with sellers
and images, a page of 20 orders with their items) are never held back.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError, GraphQLSchema, parse
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from joycart.schema import cost
from joycart.schema.errors import QuietSchema

MAX_TOKENS = 2000  # as the schema's token limit: a longer text is refused before it is priced

HEAVY_COST = 5_000
HEAVY_BUDGET = cost.COST_LIMIT


class CostBudget:
    """A FIFO semaphore counted in cost units: acquire(n) waits until n units are free."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def free(self) -> int:
        return self._free

    async def acquire(self, units: int) -> None:
        units = min(units, self.capacity)
        if not self._waiters and self._free >= units:
            self._free -= units
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (units, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted, then cancelled: give back
                self.release(units)
            else:
                self._waiters.remove(entry)
                self._wake()  # those behind it may fit now
            raise

    def release(self, units: int) -> None:
        self._free += min(units, self.capacity)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._free:
            units, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._free -= units
            waiter.set_result(None)


_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CostBudget] = (
    weakref.WeakKeyDictionary()
)


def budget() -> CostBudget:
    """This process's (this event loop's) budget of heavy work in flight."""
    loop = asyncio.get_running_loop()
    found = _budgets.get(loop)
    if found is None:
        found = _budgets[loop] = CostBudget(HEAVY_BUDGET)
    return found


@functools.lru_cache(maxsize=512)
def text_cost(schema: GraphQLSchema, query: str, operation_name: str | None) -> int:
    """The cost of the operation a query text runs (0 when it does not parse: the parser
    reports that), computed once per text."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return 0
    costs = cost.operation_costs(schema, document)
    if operation_name in costs:
        return costs[operation_name]
    return max(costs.values(), default=0)


class AdmittingSchema(QuietSchema):
    """A schema whose `execute` holds a heavy operation back until the heavy work running in
    this process leaves room for it (sync execution, which cannot wait, is left as it is)."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        run = functools.partial(
            super().execute,
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        units = text_cost(self._schema, query, operation_name) if query else 0
        # Over the limit it is refused by validation at once: it must not queue for that.
        if not HEAVY_COST < units <= cost.COST_LIMIT:
            return await run()
        shared = budget()
        await shared.acquire(units)
        try:
            return await run()
        finally:
            shared.release(units)
