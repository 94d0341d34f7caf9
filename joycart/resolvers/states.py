"""The state machines of an order, and the one function that moves a status.

Each aggregate has one transition table below. `move` is the only code that changes a status: it
checks the table, sets the status and appends the order event in the same transaction, so the
order's history always explains its state (`state_rows.RowMoves` does the same, through
`check_move`, for rows a hot path reads and writes with prebuilt statements). `record` appends
an event that changes no status. A transition the table does not allow is a bug, not a client
error: it raises `IllegalTransition` and the transaction rolls back.

Lock order, the same for every writer (so no two transactions ever wait on each other in a
cycle):

1. the buyer's row, `FOR NO KEY UPDATE` (checkout: one cart becomes one order; and the
   address book, which touches no order);
2. the order row, `FOR UPDATE`;
3. then its rows: payment sessions, items, refunds, then fulfilment rows (shipments, returns),
   each kind by id;
4. products, in ascending id order (stock moves), across all orders a transaction touches:
   expiry locks its whole batch of orders (SKIP LOCKED), their payment sessions, then sums the
   units per product and updates the products by id; checkout updates its cart's products by id;
5. jobs last (a job row is inserted or claimed after the rows it is about).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import (
    Order,
    OrderEvent,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Return,
    ReturnStatus,
    Shipment,
    ShipmentStatus,
)
from joycart.resolvers import events

Subject = Order | OrderItem | Payment | Refund | Shipment | Return


class IllegalTransition(RuntimeError):
    """A status change the transition table does not allow: a bug, never the client's doing."""


def _table(
    allowed: Mapping[Any, tuple[Any, ...]],
) -> Mapping[Any, frozenset[Any]]:
    return {state: frozenset(targets) for state, targets in allowed.items()}


# After payment an order's status follows from its items' unit counts (resolvers/progress.py);
# these rows list every change a cancel, shipment, delivery or return can make, and
# tests/operations/test_progress.py checks that no sequence of them makes any other.
ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = _table(
    {
        OrderStatus.PENDING_PAYMENT: (OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.EXPIRED),
        OrderStatus.PAID: (
            OrderStatus.PARTIALLY_CANCELLED,
            OrderStatus.CANCELLED,
            OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED,
        ),
        # Another partial cancel leaves it partially cancelled.
        OrderStatus.PARTIALLY_CANCELLED: (
            OrderStatus.PARTIALLY_CANCELLED,
            OrderStatus.CANCELLED,
            OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED,
        ),
        # Shipped units can no longer be cancelled: a cancel of the rest only completes a stage.
        OrderStatus.PARTIALLY_SHIPPED: (
            OrderStatus.SHIPPED,
            OrderStatus.DELIVERED,
            OrderStatus.RETURN_REQUESTED,
        ),
        OrderStatus.SHIPPED: (OrderStatus.DELIVERED, OrderStatus.RETURN_REQUESTED),
        OrderStatus.DELIVERED: (OrderStatus.RETURN_REQUESTED,),
        # A rejected return falls back to where its units were; a received one counts returned.
        OrderStatus.RETURN_REQUESTED: (
            OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED,
            OrderStatus.DELIVERED,
            OrderStatus.PARTIALLY_RETURNED,
            OrderStatus.RETURNED,
        ),
        OrderStatus.PARTIALLY_RETURNED: (OrderStatus.RETURN_REQUESTED, OrderStatus.RETURNED),
        OrderStatus.RETURNED: (),
        OrderStatus.CANCELLED: (),
        OrderStatus.EXPIRED: (),
    }
)

ITEM_TRANSITIONS: Mapping[OrderItemStatus, frozenset[OrderItemStatus]] = _table(
    {
        OrderItemStatus.ACTIVE: (
            OrderItemStatus.PARTIALLY_CANCELLED,
            OrderItemStatus.CANCELLED,
            OrderItemStatus.PARTIALLY_SHIPPED,
            OrderItemStatus.SHIPPED,
        ),
        OrderItemStatus.PARTIALLY_CANCELLED: (
            OrderItemStatus.PARTIALLY_CANCELLED,
            OrderItemStatus.CANCELLED,
            OrderItemStatus.PARTIALLY_SHIPPED,
            OrderItemStatus.SHIPPED,
        ),
        OrderItemStatus.PARTIALLY_SHIPPED: (
            OrderItemStatus.SHIPPED,
            OrderItemStatus.DELIVERED,
            OrderItemStatus.RETURN_REQUESTED,
        ),
        OrderItemStatus.SHIPPED: (OrderItemStatus.DELIVERED, OrderItemStatus.RETURN_REQUESTED),
        OrderItemStatus.DELIVERED: (OrderItemStatus.RETURN_REQUESTED,),
        OrderItemStatus.RETURN_REQUESTED: (
            OrderItemStatus.PARTIALLY_SHIPPED,
            OrderItemStatus.SHIPPED,
            OrderItemStatus.DELIVERED,
            OrderItemStatus.PARTIALLY_RETURNED,
            OrderItemStatus.RETURNED,
        ),
        OrderItemStatus.PARTIALLY_RETURNED: (
            OrderItemStatus.RETURN_REQUESTED,
            OrderItemStatus.RETURNED,
        ),
        OrderItemStatus.RETURNED: (),
        OrderItemStatus.CANCELLED: (),
    }
)

PAYMENT_TRANSITIONS: Mapping[PaymentStatus, frozenset[PaymentStatus]] = _table(
    {
        # A failed attempt leaves the session open: the buyer may pay it again.
        PaymentStatus.CREATED: (
            PaymentStatus.CAPTURED,
            PaymentStatus.FAILED,
            PaymentStatus.SUPERSEDED,
            PaymentStatus.CANCELLED,
        ),
        PaymentStatus.FAILED: (
            PaymentStatus.CAPTURED,
            PaymentStatus.FAILED,
            PaymentStatus.SUPERSEDED,
            PaymentStatus.CANCELLED,
        ),
        PaymentStatus.CAPTURED: (),
        PaymentStatus.SUPERSEDED: (),
        PaymentStatus.CANCELLED: (),
    }
)

REFUND_TRANSITIONS: Mapping[RefundStatus, frozenset[RefundStatus]] = _table(
    {
        RefundStatus.INITIATED: (RefundStatus.REFUNDED, RefundStatus.FAILED),
        # Razorpay's webhook outranks what we concluded: a refund we marked FAILED that Razorpay
        # reports processed is REFUNDED (the caller checks that no retry of it exists).
        RefundStatus.FAILED: (RefundStatus.REFUNDED,),
        RefundStatus.REFUNDED: (),
    }
)

# A shipment is created SHIPPED (its event names no "from"); the carrier, or for now the seller,
# reports the delivery.
SHIPMENT_TRANSITIONS: Mapping[ShipmentStatus, frozenset[ShipmentStatus]] = _table(
    {
        ShipmentStatus.SHIPPED: (ShipmentStatus.DELIVERED,),
        ShipmentStatus.DELIVERED: (),
    }
)

# A return is created REQUESTED by the buyer; the item's seller decides, then receives the goods
# (which refunds them).
RETURN_TRANSITIONS: Mapping[ReturnStatus, frozenset[ReturnStatus]] = _table(
    {
        ReturnStatus.REQUESTED: (ReturnStatus.APPROVED, ReturnStatus.REJECTED),
        ReturnStatus.APPROVED: (ReturnStatus.RECEIVED,),
        ReturnStatus.REJECTED: (),
        ReturnStatus.RECEIVED: (),
    }
)

TRANSITIONS: Mapping[type, Mapping[Any, frozenset[Any]]] = {
    Order: ORDER_TRANSITIONS,
    OrderItem: ITEM_TRANSITIONS,
    Payment: PAYMENT_TRANSITIONS,
    Refund: REFUND_TRANSITIONS,
    Shipment: SHIPMENT_TRANSITIONS,
    Return: RETURN_TRANSITIONS,
}

SUBJECT_NAMES: Mapping[type, str] = {
    Order: "ORDER",
    OrderItem: "ITEM",
    Payment: "PAYMENT",
    Refund: "REFUND",
    Shipment: "SHIPMENT",
    Return: "RETURN",
}


def can_move(subject: Subject, to: enum.Enum) -> bool:
    return to in TRANSITIONS[type(subject)][subject.status]


def check_move(
    of: type[Subject], subject_id: uuid.UUID, current: enum.Enum, to: enum.Enum, *, kind: str
) -> None:
    """Raise `IllegalTransition` unless the table of `of` allows `current -> to`. `move` and the
    prebuilt-statement moves of `state_rows` both ask here."""
    if to not in TRANSITIONS[of][current]:
        raise IllegalTransition(
            f"{SUBJECT_NAMES[of]} {subject_id}: {current.value} -> {to.value} "
            f"is not allowed ({kind})"
        )


def _item_of(subject: Subject | None) -> uuid.UUID | None:
    if isinstance(subject, OrderItem):
        return subject.id
    if isinstance(subject, Refund | Return):
        return subject.order_item_id
    return None


def record(
    session: AsyncSession,
    order: Order,
    kind: str,
    *,
    actor: str,
    subject: Subject | None = None,
    order_item_id: uuid.UUID | None = None,
    webhook_event_id: int | None = None,
    from_status: enum.Enum | None = None,
    to_status: enum.Enum | None = None,
    **detail: Any,
) -> OrderEvent:
    """Append an event to the order's history; it changes no status (`move` does that)."""
    about = subject if subject is not None else order
    event = OrderEvent(
        **events.event_row(
            order.id,
            kind,
            actor=actor,
            subject=(SUBJECT_NAMES[type(about)], about.id),
            order_item_id=order_item_id or _item_of(subject),
            refund_id=about.id if isinstance(about, Refund) else None,
            webhook_event_id=webhook_event_id,
            from_status=from_status,
            to_status=to_status,
            detail=detail,
        )
    )
    session.add(event)
    return event


def move(
    session: AsyncSession,
    order: Order,
    subject: Subject,
    to: enum.Enum,
    *,
    kind: str,
    actor: str,
    webhook_event_id: int | None = None,
    order_item_id: uuid.UUID | None = None,
    **detail: Any,
) -> OrderEvent:
    """Move `subject` (the order or one of its rows) to `to` if its table allows, with the event.

    `order_item_id` names the item the event concerns when the subject does not say it (a
    shipment holds several items: each gets an event naming it, see resolvers/fulfilment.py).
    """
    current = subject.status
    check_move(type(subject), subject.id, current, to, kind=kind)
    subject.status = to  # type: ignore[assignment]  # the table above is keyed by its enum
    return record(
        session,
        order,
        kind,
        actor=actor,
        subject=subject,
        order_item_id=order_item_id,
        webhook_event_id=webhook_event_id,
        from_status=current,
        to_status=to,
        **detail,
    )
