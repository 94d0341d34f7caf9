"""Admission by cost: expensive operations take turns; light ones never wait.

Executing GraphQL is CPU work on the process's one event loop. Six operations just under the
cost limit, run at once, make every other request on that loop (`/readyz`, a product page) wait
behind seconds of object completion, whatever the pool holds. So an operation whose cost
(`joycart.schema.cost`) is over `HEAVY_COST` waits, before it executes, until the heavy
operations running in this process leave room for it: together they may cost at most
`HEAVY_BUDGET` (one operation at the cost limit). While it waits it holds nothing: no
connection, no CPU. Waiters are served first come, first served.

Light operations (cost at most `HEAVY_COST`: a full catalogue page of 100 products with sellers
and images, a page of 20 orders with their items) are never held back.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections import deque
from collections.abc import AsyncIterator

from graphql import DocumentNode, GraphQLSchema
from strawberry.extensions import SchemaExtension

from joycart.schema import cost

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


# Keyed like strawberry's validation cache (the parser cache hands back the same document).
_costs = functools.lru_cache(maxsize=512)(cost.operation_costs)


def operation_cost(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> int:
    costs = _costs(schema, document)
    if operation_name in costs:
        return costs[operation_name]
    return max(costs.values(), default=0)


class AdmitByCost(SchemaExtension):
    """Holds a heavy operation back until the heavy work running in this process allows it."""

    async def on_execute(self) -> AsyncIterator[None]:
        document = self.execution_context.graphql_document
        units = (
            operation_cost(
                self.execution_context.schema._schema,
                document,
                self.execution_context.operation_name,
            )
            if document is not None
            else 0
        )
        if units <= HEAVY_COST:
            yield
            return
        shared = budget()
        await shared.acquire(units)
        try:
            yield
        finally:
            shared.release(units)
