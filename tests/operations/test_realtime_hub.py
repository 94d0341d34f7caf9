"""The hub's watches and the notices they are fed, without sockets or a database."""

from __future__ import annotations

import asyncio
import uuid

from joycart.realtime.hub import Watch
from joycart.realtime.notices import Notice, parse


async def test_a_burst_of_changes_wakes_a_busy_subscriber_once() -> None:
    dropped: list[bool] = []
    watch = Watch(limit=10, on_overflow=lambda: dropped.append(True))
    order, item = uuid.uuid4(), uuid.uuid4()
    for changed in (order, item, order, order, item):
        watch.push(changed)
    assert await watch.changes() == [order, item]  # each id once, in first-seen order
    waiting = asyncio.ensure_future(watch.changes())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing new: it waits
    watch.push(order)
    assert await waiting == [order]
    assert dropped == []


async def test_a_subscriber_too_far_behind_is_dropped_once_and_kept_nothing_for() -> None:
    dropped: list[bool] = []
    watch = Watch(limit=3, on_overflow=lambda: dropped.append(True))
    for _ in range(3):
        watch.push(uuid.uuid4())
    assert dropped == []
    for _ in range(100):
        watch.push(uuid.uuid4())
    assert dropped == [True]
    assert watch.overflowed
    assert watch._ids == {}  # nothing is held for a subscriber that is gone


def test_a_notice_is_ids_only_and_an_unreadable_one_is_ignored() -> None:
    order, item = uuid.uuid4(), uuid.uuid4()
    payload = (
        f'{{"event_id": 7, "order_id": "{order}", "order_item_id": "{item}", '
        f'"subject": "REFUND", "subject_id": "{uuid.uuid4()}"}}'
    )
    assert parse(payload) == Notice(
        order_id=order, order_item_id=item, subject="REFUND", event_id=7
    )
    assert parse('{"order_id": "not-a-uuid"}') is None
    assert parse("not json") is None
