"""The transition tables: every aggregate's every state has a row, every transition a table does
not list is refused without changing anything, and every allowed one writes its event."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import pytest

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
from joycart.resolvers import states


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
