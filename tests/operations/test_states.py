"""The transition tables: every aggregate's every state has a row, every transition a table does
not list is refused without changing anything, and every allowed one writes its event."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import pytest
import sqlalchemy

from joycart.bootstrap import Services
from joycart.models import (
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Payment,
    Refund,
    Return,
    Shipment,
)
from joycart.resolvers import state_rows, states


def _subject(kind: type, status: enum.Enum) -> Any:
    row = kind(id=uuid.uuid4())
    row.status = status
    return row


def _order() -> Order:
    return Order(id=uuid.uuid4(), status=OrderStatus.PAID)


def _status_enum(kind: type) -> type[enum.Enum]:
    table = states.TRANSITIONS[kind]
    return type(next(iter(table)))


CASES = [
    (kind, frm, to)
    for kind in states.TRANSITIONS
    for frm in _status_enum(kind)
    for to in _status_enum(kind)
]


@pytest.mark.parametrize("kind", list(states.TRANSITIONS), ids=lambda k: k.__name__)
def test_every_state_of_every_aggregate_has_a_row(kind: type) -> None:
    assert set(states.TRANSITIONS[kind]) == set(_status_enum(kind))


async def test_every_transition_outside_the_tables_is_refused_and_changes_nothing(
    services: Services,
) -> None:
    refused = allowed = 0
    async with services.sessions() as session:
        for kind, frm, to in CASES:
            order = _order()
            subject = order if kind is Order else _subject(kind, frm)
            subject.status = frm
            before = len([o for o in session.new if isinstance(o, OrderEvent)])
            if to in states.TRANSITIONS[kind][frm]:
                event = states.move(session, order, subject, to, kind="TEST", actor="test")
                assert subject.status is to
                assert (event.from_status, event.to_status) == (frm.value, to.value)
                assert event.subject == states.SUBJECT_NAMES[kind]
                allowed += 1
                continue
            with pytest.raises(states.IllegalTransition):
                states.move(session, order, subject, to, kind="TEST", actor="test")
            assert subject.status is frm
            assert len([o for o in session.new if isinstance(o, OrderEvent)]) == before
            refused += 1
        await session.rollback()
    assert refused > 0
    assert allowed > 0
    assert refused + allowed == len(CASES)


def test_terminal_states_have_no_way_out() -> None:
    for kind in (Order, OrderItem, Payment, Refund, Shipment, Return):
        table = states.TRANSITIONS[kind]
        terminal = [s for s, targets in table.items() if not targets]
        assert terminal, f"{kind.__name__} has no terminal state"


async def test_moves_by_prebuilt_statements_ask_the_same_tables(services: Services) -> None:
    """`state_rows.RowMoves` (the capture webhook's moves) refuses what the tables refuse, before
    it sends anything, and queues the event of every move they allow."""
    sent: list[str] = []

    def count(*args: Any) -> None:
        sent.append(str(args[2]))

    refused = allowed = 0
    async with services.engine.connect() as conn:
        await conn.begin()
        sqlalchemy.event.listen(conn.sync_connection, "before_cursor_execute", count)
        for kind in (Order, Payment):
            for frm in _status_enum(kind):
                for to in _status_enum(kind):
                    moves = state_rows.RowMoves(conn, uuid.uuid4(), actor="test")
                    move = moves.move(kind, uuid.uuid4(), frm, to, kind="TEST", columns={})
                    before = len(sent)
                    if to in states.TRANSITIONS[kind][frm]:
                        await move  # no such row: the UPDATE changes nothing
                        assert len(sent) == before + 1
                        allowed += 1
                        continue
                    with pytest.raises(states.IllegalTransition):
                        await move
                    assert len(sent) == before
                    refused += 1
        await conn.rollback()
    assert refused > 0
    assert allowed > 0
