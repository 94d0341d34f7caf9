"""The process's switchboard: notices in from the one listener, out to the watches that want them.

A *watch* is one subscription's inbox. It holds the ids of what changed (an order, or a seller's
items), coalesced: ten notices about one order while its subscriber is busy reading are one id,
so the subscriber reads once. It also counts how far behind its subscriber is; past the limit
the subscriber is a slow consumer and its socket is dropped (`on_overflow`), so nothing is ever
buffered without bound.

Routing: a notice about order O wakes the watches on O. Seller watches get item ids: the item a
notice names, or every item of O for a change of the order itself (PAID, CANCELLED, ...); the
buyer's payment sessions are not a seller's business. Who sells which item is asked of the
database once per order and remembered (an order's items never change after checkout).

The listener is started by the first watch, so a process that never serves a socket never opens
a LISTEN connection; `ready()` waits until LISTEN is in place, and a subscriber reads the
current state only after that, so no commit can fall between its first read and its updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta

from joycart.db import Sessions
from joycart.realtime.limits import SocketLimits
from joycart.realtime.listener import Listener, asyncpg_dsn
from joycart.realtime.notices import Notice
from joycart.resolvers import updates

log = logging.getLogger("joycart.realtime")

READY_TIMEOUT_SECONDS = 10.0
# A transaction's events carry the time it wrote them, which can be this much before its commit.
REPLAY_MARGIN = timedelta(seconds=60)
MAX_PENDING_NOTICES = 10_000  # past this the dispatcher is far behind: everyone reads afresh
REMEMBERED_ORDERS = 10_000


class RealtimeUnavailable(Exception):
    """The LISTEN connection is not up: a new subscription cannot promise updates."""


class TooManyConnections(Exception):
    """The account already holds as many sockets as this process allows."""


class Watch:
    """One subscription's inbox: changed ids, coalesced, with a bounded backlog."""

    def __init__(self, *, limit: int, on_overflow: Callable[[], None]) -> None:
        self._ids: dict[uuid.UUID, None] = {}  # insertion-ordered set
        self._backlog = 0
        self._limit = limit
        self._on_overflow = on_overflow
        self._ready = asyncio.Event()
        self.overflowed = False

    def push(self, changed: uuid.UUID) -> None:
        if self.overflowed:
            return
        self._backlog += 1
        if self._backlog > self._limit:
            self.overflowed = True
            self._ids.clear()
            self._on_overflow()
            return
        self._ids[changed] = None
        self._ready.set()

    async def changes(self) -> list[uuid.UUID]:
        """Wait for a change; everything pushed meanwhile comes back as one batch."""
        await self._ready.wait()
        self._ready.clear()
        changed, self._ids, self._backlog = list(self._ids), {}, 0
        return changed


class Hub:
    def __init__(
        self,
        *,
        listen_url: str,
        sessions: Sessions,
        read_sessions: Sessions | None = None,
        limits: SocketLimits,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.limits = limits
        self.clock = clock  # when a socket's token expires is judged by this
        self._dsn = asyncpg_dsn(listen_url)
        self._sessions = sessions
        # What subscribers read each update with: plain reads, no transaction around them,
        # at most `read_concurrency` at once.
        self.read_sessions = read_sessions or sessions
        self.read_slots = asyncio.Semaphore(limits.read_concurrency)
        self._orders: dict[uuid.UUID, set[Watch]] = {}
        self._sellers: dict[uuid.UUID, set[Watch]] = {}
        self._connections: dict[str, int] = {}
        self._items: OrderedDict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]] = OrderedDict()
        self._inbox: list[Notice] = []
        self._behind = False
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []  # the listener and the dispatcher
        self._replays: set[asyncio.Task[None]] = set()
        self.listener: Listener | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._runners and not any(task.done() for task in self._runners):
            return
        for task in self._runners:  # one of them died of a bug (logged): start both afresh
            task.cancel()
        self._ready.clear()
        self.listener = Listener(
            self._dsn, on_notice=self._received, on_ready=self._listening, on_lost=self._lost
        )
        self._runners = [
            asyncio.create_task(self.listener.run(), name="joycart-listen"),
            asyncio.create_task(self._dispatch(), name="joycart-dispatch"),
        ]
        for task in self._runners:
            task.add_done_callback(self._finished)

    async def ready(self) -> None:
        """Return once LISTEN is in place (starting the listener if need be)."""
        self._start()
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                await self._ready.wait()
        except TimeoutError:
            raise RealtimeUnavailable("Live updates are unavailable right now; retry.") from None

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    async def close(self) -> None:
        tasks = [*self._runners, *self._replays]
        self._runners, self._replays = [], set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ready.clear()

    # -- connections and watches ---------------------------------------------------------------

    def admit(self, account: str) -> None:
        """Count one more socket for the account, or refuse it past the limit."""
        held = self._connections.get(account, 0)
        if held >= self.limits.max_connections_per_user:
            raise TooManyConnections(
                f"At most {self.limits.max_connections_per_user} sockets per account."
            )
        self._connections[account] = held + 1

    def release(self, account: str) -> None:
        held = self._connections.get(account, 0) - 1
        if held > 0:
            self._connections[account] = held
        else:
            self._connections.pop(account, None)

    def connections_of(self, account: str) -> int:
        return self._connections.get(account, 0)

    def watches(self, key: uuid.UUID | None = None) -> int:
        """How many watches are open (on one order or seller, or in all)."""
        tables = (self._orders, self._sellers)
        if key is not None:
            return sum(len(table.get(key, ())) for table in tables)
        return sum(len(group) for table in tables for group in table.values())

    @contextlib.asynccontextmanager
    async def watch_order(
        self, order_id: uuid.UUID, *, on_overflow: Callable[[], None]
    ) -> AsyncIterator[Watch]:
        async with self._watching(self._orders, order_id, on_overflow) as watch:
            yield watch

    @contextlib.asynccontextmanager
    async def watch_seller(
        self, seller_id: uuid.UUID, *, on_overflow: Callable[[], None]
    ) -> AsyncIterator[Watch]:
        async with self._watching(self._sellers, seller_id, on_overflow) as watch:
            yield watch

    @contextlib.asynccontextmanager
    async def _watching(
        self,
        table: dict[uuid.UUID, set[Watch]],
        key: uuid.UUID,
        on_overflow: Callable[[], None],
    ) -> AsyncIterator[Watch]:
        watch = Watch(limit=self.limits.queue_size, on_overflow=on_overflow)
        # Registered before LISTEN is confirmed and before the first read: a commit in between
        # wakes the watch, and costs at most one read more.
        table.setdefault(key, set()).add(watch)
        try:
            await self.ready()
            yield watch
        finally:
            group = table.get(key)
            if group is not None:
                group.discard(watch)
                if not group:
                    del table[key]

    # -- from the listener ---------------------------------------------------------------------

    def _received(self, notice: Notice) -> None:
        if len(self._inbox) >= MAX_PENDING_NOTICES:
            self._inbox.clear()
            self._behind = True  # the dispatcher makes everyone read again
        elif not self._behind:
            self._inbox.append(notice)
        self._wake.set()

    def _listening(self, lost_at: datetime | None) -> None:
        self._ready.set()
        if lost_at is not None:  # notices sent while we were away are gone: catch up
            log.warning(
                "the LISTEN connection is back after an outage; every subscriber reads again"
            )
            self._catch_up(lost_at)

    def _lost(self) -> None:
        self._ready.clear()

    def _catch_up(self, since: datetime) -> None:
        for order_id, group in list(self._orders.items()):
            for watch in list(group):
                watch.push(order_id)
        if self._sellers:
            task = asyncio.create_task(self._replay(since - REPLAY_MARGIN))
            self._replays.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._replays.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("real-time task %s failed", task.get_name(), exc_info=task.exception())

    async def _replay(self, since: datetime) -> None:
        async with self._sessions() as session:
            rows = await updates.events_since(session, since=since)
        self._inbox.extend(Notice(order_id=o, order_item_id=i, subject=s) for o, i, s in rows)
        self._wake.set()

    # -- routing -------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._behind:
                self._behind = False
                log.warning("real-time dispatch fell behind; every subscriber reads again")
                self._catch_up(datetime.now(UTC))
                continue
            batch, self._inbox = self._inbox, []
            try:
                sellers = await self._item_sellers(n.order_id for n in batch)
                for notice in batch:
                    self._route(notice, sellers)
            except Exception:  # a failed look-up must not stop the dispatcher for good
                log.exception("real-time dispatch failed; subscribers read again")
                self._catch_up(datetime.now(UTC))

    async def _item_sellers(
        self, order_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]]:
        """(item, seller) pairs of these orders, when some seller is watching; else nothing."""
        if not self._sellers:
            return {}
        wanted = set(order_ids)
        unknown = wanted - self._items.keys()
        if unknown:
            async with self._sessions() as session:
                self._items.update(await updates.item_sellers(session, order_ids=unknown))
        found = {o: self._items[o] for o in wanted}
        for order_id in wanted:
            self._items.move_to_end(order_id)
        while len(self._items) > REMEMBERED_ORDERS:
            self._items.popitem(last=False)
        return found

    def _route(
        self, notice: Notice, sellers: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]]
    ) -> None:
        for watch in list(self._orders.get(notice.order_id, ())):
            watch.push(notice.order_id)
        pairs = sellers.get(notice.order_id, [])
        if notice.order_item_id is not None:
            pairs = [p for p in pairs if p[0] == notice.order_item_id]
        elif notice.subject != "ORDER":
            return  # a payment session: the buyer's alone
        for item_id, seller_id in pairs:
            for watch in list(self._sellers.get(seller_id, ())):
                watch.push(item_id)
