"""`states.move` for rows a hot path reads and writes with prebuilt statements, no ORM objects.

The capture webhook locks its order and payment session with prebuilt statements and writes
them the same way (`capture_rows`). Its status changes still obey the one transition table of
each aggregate: `RowMoves.move` asks `states.check_move` before it sends the row's UPDATE, and
the order events of every move are written, all with one INSERT, when the block ends without an
exception, in the same transaction. Like `move`, each event's log line is written at the move.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Update, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from joycart.models import Order, Payment
from joycart.resolvers import events, states

Moved = type[Order] | type[Payment]

# One UPDATE per aggregate, built once: the row by id, with the columns given at execution.
# Only the order and its payment sessions so far: their events name no item and no refund.
_SET_STATUS: dict[Moved, Update] = {
    model: update(model).where(model.id == bindparam("subject_id")) for model in (Order, Payment)
}


class RowMoves:
    """The status changes of one order's locked rows, in one transaction."""

    def __init__(
        self,
        conn: AsyncConnection,
        order_id: uuid.UUID,
        *,
        actor: str,
        webhook_event_id: int | None = None,
    ) -> None:
        self._conn = conn
        self._order_id = order_id
        self._actor = actor
        self._webhook_event_id = webhook_event_id
        self._events: list[dict[str, Any]] = []

    async def move(
        self,
        of: Moved,
        subject_id: uuid.UUID,
        current: enum.Enum,
        to: enum.Enum,
        *,
        kind: str,
        columns: Mapping[str, Any],
        **detail: Any,
    ) -> None:
        """Move the row `subject_id` of `of` (read in its `current` status under its lock) to
        `to` if the table allows, setting `columns` too; its event is written with the others."""
        states.check_move(of, subject_id, current, to, kind=kind)
        await self._conn.execute(
            _SET_STATUS[of], {**columns, "status": to, "subject_id": subject_id}
        )
        self._events.append(
            events.event_row(
                self._order_id,
                kind,
                actor=self._actor,
                subject=(states.SUBJECT_NAMES[of], subject_id),
                webhook_event_id=self._webhook_event_id,
                from_status=current,
                to_status=to,
                detail=detail,
            )
        )

    async def write_events(self) -> None:
        if self._events:
            await events.insert_rows(self._conn, self._events)
            self._events = []


@asynccontextmanager
async def row_moves(
    conn: AsyncConnection,
    order_id: uuid.UUID,
    *,
    actor: str,
    webhook_event_id: int | None = None,
) -> AsyncIterator[RowMoves]:
    """Moves of `order_id`'s rows; their events are written when the block ends normally."""
    moves = RowMoves(conn, order_id, actor=actor, webhook_event_id=webhook_event_id)
    yield moves
    await moves.write_events()
