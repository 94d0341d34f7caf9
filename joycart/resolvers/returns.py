"""Returns: the buyer sends delivered units back; receiving them refunds exactly those units.

Rules:
- The buyer may request a return of units delivered within the return window (days after the
  delivery of the shipment that brought them), and never of more than were delivered and are
  not already returned or in a return. Returns count against the earliest deliveries first, so
  the units still returnable are `min(delivered in the window, delivered - returned - in a
  return)`.
- The item's seller approves or rejects a request, then receives an approved return: that
  creates the refund for exactly its units (INITIATED now, sent to Razorpay after the commit,
  REFUNDED only by Razorpay's `refund.processed`), and with `restock` puts the units back on the
  shelf with a stock-ledger row of reason RETURN.
- Locks: the order, the item, then the return (states.py's order), so two receives of one return
  queue on the order row and the second finds it RECEIVED: one refund.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.errors import InvalidInput, InvalidState, NotFound
from joycart.models import (
    Capture,
    Order,
    OrderItem,
    Payment,
    Refund,
    RefundReason,
    Return,
    ReturnStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    StockReason,
    User,
)
from joycart.resolvers import progress, refunds, states
from joycart.resolvers.fulfilment import lock_order_items, order_items

# One helper returns stock and writes its ledger row together (resolvers/orders.py).
from joycart.resolvers.orders import _return_to_stock

MAX_REASON = 500


@dataclass(frozen=True)
class ReturnResult:
    order: Order
    item: OrderItem
    ret: Return
    refund: Refund | None = None


def _reason(value: str, field: str) -> str:
    return validation.text(value, field=field, min_len=1, max_len=MAX_REASON, label=field)


async def refund_units(
    session: AsyncSession,
    *,
    order: Order,
    item: OrderItem,
    units: int,
    reason: RefundReason,
    note: str | None,
    actor: str,
) -> Refund:
    """A refund of `units` of a paid item at its unit price: INITIATED in this transaction, with
    the owed Razorpay call as a job; the caller submits it after commit (schema/fulfilment.py).

    The one place returns create refunds, through the same code as cancellations.
    """
    capture = await session.scalar(
        select(Capture)
        .join(Payment, Payment.id == Capture.payment_id)
        .where(Payment.order_id == order.id, Capture.owed.is_(True))
    )
    assert capture is not None, "delivered units belong to a paid order, which has its capture"
    refund = refunds.create_refund(
        session,
        order=order,
        capture=capture,
        amount=item.unit_price * units,
        reason=reason,
        order_item_id=item.id,
        quantity=units,
        note=note,
    )
    await refunds.owe_refund_call(session, refund)
    states.record(
        session, order, "REFUND_INITIATED", actor=actor, subject=refund, amount=refund.amount
    )
    return refund


async def delivered_within(
    session: AsyncSession, item: OrderItem, *, now: datetime, window: timedelta
) -> int:
    """Units of the item whose shipment was delivered no longer than `window` before `now`."""
    total = await session.scalar(
        select(func.coalesce(func.sum(ShipmentLine.quantity), 0))
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .where(
            ShipmentLine.order_item_id == item.id,
            Shipment.status == ShipmentStatus.DELIVERED,
            Shipment.delivered_at >= now - window,
        )
    )
    return int(total or 0)


async def request_return(
    session: AsyncSession,
    *,
    buyer: User,
    order_item_id: str,
    quantity: int,
    reason: str,
    now: datetime,
    window: timedelta,
) -> ReturnResult:
    """The buyer asks to send back delivered units, within the return window of their delivery."""
    iid = validation.parse_id(order_item_id, field="orderItemId", what="order item")
    found = await session.get(OrderItem, iid)
    if found is None:
        raise NotFound("No order item with that ID.", field="orderItemId")
    order, items = await lock_order_items(session, found.order_id, [iid])
    item = items[iid]
    if order.buyer_id != buyer.id:
        raise NotFound("No order item with that ID.", field="orderItemId")
    reason = _reason(reason, "reason")
    returnable = item.returnable_quantity
    if returnable == 0:
        raise InvalidState(
            "No delivered unit of this item is left to return (only delivered units can be "
            "returned, once)."
        )
    if not 1 <= quantity <= returnable:
        raise InvalidInput(
            f"quantity must be between 1 and {returnable} (delivered units not already "
            "returned or in a return).",
            field="quantity",
        )
    in_window = min(returnable, await delivered_within(session, item, now=now, window=window))
    if quantity > in_window:
        days = window.days
        raise InvalidState(
            f"The return window is {days} days after delivery; "
            + (
                f"only {in_window} unit(s) of this item are still inside it."
                if in_window
                else "it has closed for this item."
            ),
            field="quantity",
        )
    ret = Return(
        id=uuid.uuid4(),
        order_id=order.id,
        order_item_id=item.id,
        seller_id=item.seller_id,
        quantity=quantity,
        reason=reason,
        status=ReturnStatus.REQUESTED,
        requested_at=now,
    )
    session.add(ret)
    await session.flush()
    item.return_requested_quantity += quantity
    actor = f"buyer:{buyer.id}"
    states.record(
        session,
        order,
        "RETURN_REQUESTED",
        actor=actor,
        subject=ret,
        to_status=ReturnStatus.REQUESTED,
        units=quantity,
        reason=reason,
    )
    await _settle(session, order, item, "ITEM_RETURN_REQUESTED", actor)
    return ReturnResult(order=order, item=item, ret=ret)


async def _sellers_return(
    session: AsyncSession, seller: User, return_id: str
) -> tuple[Order, OrderItem, Return]:
    """Lock the return's order, item and the return itself; NOT_FOUND unless it is the seller's."""
    rid = validation.parse_id(return_id, field="returnId", what="return")
    found = await session.get(Return, rid)
    if found is None or found.seller_id != seller.id:
        raise NotFound("No return of yours with that ID.", field="returnId")
    order, items = await lock_order_items(session, found.order_id, [found.order_item_id])
    ret = await session.get_one(Return, rid, with_for_update=True, populate_existing=True)
    return order, items[ret.order_item_id], ret


def _must_be(ret: Return, expected: ReturnStatus, doing: str) -> None:
    if ret.status is not expected:
        raise InvalidState(
            f"This return is {ret.status.value.lower()}; only a {expected.value.lower()} "
            f"return can be {doing}."
        )


async def _settle(
    session: AsyncSession, order: Order, item: OrderItem, kind: str, actor: str
) -> None:
    progress.settle_item(session, order, item, kind=kind, actor=actor)
    progress.settle_order(session, order, await order_items(session, order), actor=actor)
    await session.flush()


async def approve_return(
    session: AsyncSession, *, seller: User, return_id: str, now: datetime
) -> ReturnResult:
    """The item's seller accepts a requested return: the buyer may send the units back."""
    order, item, ret = await _sellers_return(session, seller, return_id)
    _must_be(ret, ReturnStatus.REQUESTED, "approved")
    ret.decided_at = now
    states.move(
        session,
        order,
        ret,
        ReturnStatus.APPROVED,
        kind="RETURN_APPROVED",
        actor=f"seller:{seller.id}",
    )
    await session.flush()
    return ReturnResult(order=order, item=item, ret=ret)


async def reject_return(
    session: AsyncSession, *, seller: User, return_id: str, reason: str, now: datetime
) -> ReturnResult:
    """The item's seller refuses a requested return, saying why; the units stay delivered."""
    reason = _reason(reason, "reason")
    order, item, ret = await _sellers_return(session, seller, return_id)
    _must_be(ret, ReturnStatus.REQUESTED, "rejected")
    ret.decided_at = now
    ret.rejection_reason = reason
    item.return_requested_quantity -= ret.quantity
    actor = f"seller:{seller.id}"
    states.move(
        session,
        order,
        ret,
        ReturnStatus.REJECTED,
        kind="RETURN_REJECTED",
        actor=actor,
        reason=reason,
    )
    await _settle(session, order, item, "ITEM_RETURN_REJECTED", actor)
    return ReturnResult(order=order, item=item, ret=ret)


async def receive_return(
    session: AsyncSession, *, seller: User, return_id: str, restock: bool, now: datetime
) -> ReturnResult:
    """The seller has the units back: refund exactly them, and restock them if asked."""
    order, item, ret = await _sellers_return(session, seller, return_id)
    _must_be(ret, ReturnStatus.APPROVED, "received")
    actor = f"seller:{seller.id}"
    item.return_requested_quantity -= ret.quantity
    item.returned_quantity += ret.quantity
    refund = await refund_units(
        session,
        order=order,
        item=item,
        units=ret.quantity,
        reason=RefundReason.RETURN,
        note=ret.reason,
        actor=actor,
    )
    if restock and item.product_id is not None:  # products last, as in every writer
        await _return_to_stock(session, item, ret.quantity, StockReason.RETURN, seller)
    ret.refund_id = refund.id
    ret.received_at = now
    ret.restocked = restock and item.product_id is not None
    states.move(
        session,
        order,
        ret,
        ReturnStatus.RECEIVED,
        kind="RETURN_RECEIVED",
        actor=actor,
        units=ret.quantity,
        restocked=ret.restocked,
    )
    await _settle(session, order, item, "ITEM_RETURNED", actor)
    return ReturnResult(order=order, item=item, ret=ret, refund=refund)
