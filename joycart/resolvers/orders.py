"""Orders after checkout: who may see them, item cancellation, and expiry of unpaid orders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.errors import InvalidInput, InvalidState, NotFound
from joycart.models import (
    Capture,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    Refund,
    RefundReason,
    StockMovement,
    StockReason,
    User,
)
from joycart.resolvers import payment_sessions, progress, refunds, states
from joycart.resolvers.pages import Page, Position, newest_first

PAID_STATES = progress.PAID_STATES  # PAID, PARTIALLY_CANCELLED, and the fulfilment stages
ENDED_STATES = (OrderStatus.CANCELLED, OrderStatus.EXPIRED)
MAX_REASON = 500


@dataclass(frozen=True)
class CancelResult:
    order: Order
    item: OrderItem
    refund: Refund | None
    new_payment: Payment | None


async def buyer_orders(
    session: AsyncSession, *, buyer: User, first: int, after: Position | None
) -> Page[Order]:
    """The buyer's orders, newest first."""
    stmt = select(Order).where(Order.buyer_id == buyer.id)
    return await newest_first(session, stmt, Order, first=first, after=after)


async def seller_items(
    session: AsyncSession, *, seller: User, first: int, after: Position | None
) -> Page[OrderItem]:
    """Items of the seller's products across all orders, newest first."""
    stmt = select(OrderItem).where(OrderItem.seller_id == seller.id)
    return await newest_first(session, stmt, OrderItem, first=first, after=after)


async def seller_item(
    session: AsyncSession, *, seller: User, order_item_id: uuid.UUID
) -> OrderItem | None:
    """One item of the seller's products, or None: a seller sees their own items only."""
    return await session.scalar(
        select(OrderItem).where(OrderItem.id == order_item_id, OrderItem.seller_id == seller.id)
    )


async def visible_order(session: AsyncSession, *, viewer: User, order_id: str) -> Order | None:
    """An order its buyer, or a seller of one of its items, may see; None for anyone else."""
    try:
        oid = uuid.UUID(order_id)
    except ValueError:
        return None
    order = await session.get(Order, oid)
    if order is None:
        return None
    if order.buyer_id == viewer.id:
        return order
    sells = await session.scalar(
        select(OrderItem.id)
        .where(OrderItem.order_id == oid, OrderItem.seller_id == viewer.id)
        .limit(1)
    )
    return order if sells is not None else None


async def _return_to_stock(
    session: AsyncSession, item: OrderItem, units: int, reason: StockReason, actor: User | None
) -> None:
    """Units back on the shelf, and the ledger row that says why: always together."""
    await session.execute(
        update(Product).where(Product.id == item.product_id).values(stock=Product.stock + units)
    )
    _record_stock_back(session, item, units, reason, actor)


def _record_stock_back(
    session: AsyncSession, item: OrderItem, units: int, reason: StockReason, actor: User | None
) -> None:
    """The ledger row of units that came back (the stock update is the caller's)."""
    session.add(
        StockMovement(
            product_id=item.product_id,
            delta=units,
            reason=reason,
            order_id=item.order_id,
            actor_id=actor.id if actor else None,
        )
    )


async def cancel_item(
    session: AsyncSession,
    *,
    actor: User,
    order_item_id: str,
    quantity: int | None,
    reason: str | None,
) -> CancelResult:
    """The buyer or the item's seller cancels units: stock comes back, a paid order refunds them."""
    iid = validation.parse_id(order_item_id, field="orderItemId", what="order item")
    found = await session.get(OrderItem, iid)
    if found is None:
        raise NotFound("No order item with that ID.", field="orderItemId")
    # Lock order, then item: concurrent cancels of one item queue here and see each other's work.
    order = await session.get_one(
        Order, found.order_id, with_for_update=True, populate_existing=True
    )
    item = await session.get_one(OrderItem, iid, with_for_update=True, populate_existing=True)
    if actor.id not in (order.buyer_id, item.seller_id):
        raise NotFound("No order item with that ID.", field="orderItemId")
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput(f"reason must be at most {MAX_REASON} characters.", field="reason")
    if order.status in ENDED_STATES:
        raise InvalidState(f"The order is {order.status.value.lower()}; nothing to cancel.")
    remaining = item.active_quantity
    if remaining == 0:
        raise InvalidState("Every unit of this item is already cancelled.")
    # Only units that have not shipped can be cancelled; shipped ones come back as a return.
    unshipped = item.awaiting_shipment
    if unshipped == 0:
        raise InvalidState(
            "Every remaining unit of this item has shipped, so it can no longer be cancelled. "
            "Once it is delivered, request a return (requestReturn) to send it back for a refund."
        )
    units = unshipped if quantity is None else quantity
    if not 1 <= units <= remaining:
        raise InvalidInput(
            f"quantity must be between 1 and {remaining} (the units not yet cancelled).",
            field="quantity",
        )
    if units > unshipped:
        raise InvalidState(
            f"Only {unshipped} unit(s) of this item have not shipped and can be cancelled. "
            "For shipped units, request a return (requestReturn) once they are delivered.",
            field="quantity",
        )
    item.cancelled_quantity += units
    if item.product_id is not None:
        await _return_to_stock(session, item, units, StockReason.CANCELLATION, actor)
    who = f"{'buyer' if actor.id == order.buyer_id else 'seller'}:{actor.id}"
    moved = progress.settle_item(
        session, order, item, kind="ITEM_CANCELLED", actor=who, units=units, reason=reason
    )
    if moved is None:  # the status stays (say, more units of a partly shipped item): still logged
        states.record(
            session, order, "ITEM_CANCELLED", actor=who, subject=item, units=units, reason=reason
        )
    await session.flush()
    items = (await session.scalars(select(OrderItem).where(OrderItem.order_id == order.id))).all()
    all_cancelled = all(i.active_quantity == 0 for i in items)
    refund: Refund | None = None
    new_payment: Payment | None = None
    if order.status in PAID_STATES:
        capture = await session.scalar(
            select(Capture)
            .join(Payment, Payment.id == Capture.payment_id)
            .where(Payment.order_id == order.id, Capture.owed.is_(True))
        )
        assert capture is not None, "a paid order has its owed capture"
        refund = refunds.create_refund(
            session,
            order=order,
            capture=capture,
            amount=item.unit_price * units,
            reason=RefundReason.CANCELLATION,
            order_item_id=item.id,
            quantity=units,
            note=reason,
        )
        await refunds.owe_refund_call(session, refund)
        states.record(
            session, order, "REFUND_INITIATED", actor=who, subject=refund, amount=refund.amount
        )
        progress.settle_order(session, order, items, actor=who)
    else:
        new_payment = await _renew_session(session, order, items, all_cancelled, who)
    await session.flush()
    return CancelResult(order=order, item=item, refund=refund, new_payment=new_payment)


async def _renew_session(
    session: AsyncSession,
    order: Order,
    items: Sequence[OrderItem],
    all_cancelled: bool,
    actor: str,
) -> Payment | None:
    """An unpaid order now owes less: retire its session and open one for the new amount."""
    current = await payment_sessions.current_session(session, order.id, lock=True)
    retired = PaymentStatus.CANCELLED if all_cancelled else PaymentStatus.SUPERSEDED
    states.move(
        session, order, current, retired, kind=f"PAYMENT_SESSION_{retired.value}", actor=actor
    )
    if all_cancelled:
        states.move(
            session, order, order, OrderStatus.CANCELLED, kind="ORDER_CANCELLED", actor=actor
        )
        return None
    owed = sum(i.unit_price * i.active_quantity for i in items)
    payment = await payment_sessions.new_session(
        session, order=order, sequence=current.sequence + 1, amount=owed
    )
    states.record(
        session, order, "PAYMENT_SESSION_RENEWED", actor=actor, subject=payment, amount=owed
    )
    return payment


async def expire_due_orders(session: AsyncSession, *, limit: int = 50) -> int:
    """Unpaid orders past their window expire and give their stock back, exactly once."""
    due = (
        await session.scalars(
            select(Order)
            .where(
                Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at < datetime.now(UTC)
            )
            .order_by(Order.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not due:
        return 0
    order_ids = [order.id for order in due]
    # Lock order (states.py): the orders, then their payment sessions, then products by id
    # across the whole batch. Returning stock order by order would lock product B (order 1)
    # before product A (order 2) while a checkout holds A and waits for B: a deadlock.
    open_sessions = (
        await session.scalars(
            select(Payment)
            .where(
                Payment.order_id.in_(order_ids),
                Payment.status.in_(payment_sessions.OPEN_SESSION_STATES),
            )
            .order_by(Payment.id)
            .with_for_update()
        )
    ).all()
    items = (
        await session.scalars(
            select(OrderItem)
            .where(OrderItem.order_id.in_(order_ids))
            .order_by(OrderItem.order_id, OrderItem.position)
        )
    ).all()
    owed_back = [i for i in items if i.active_quantity and i.product_id is not None]
    units: dict[uuid.UUID, int] = {}
    for item in owed_back:
        assert item.product_id is not None
        units[item.product_id] = units.get(item.product_id, 0) + item.active_quantity
    for product_id in sorted(units):
        await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + units[product_id])
        )
    for item in owed_back:
        _record_stock_back(session, item, item.active_quantity, StockReason.EXPIRY, None)
    by_order = {order.id: order for order in due}
    for payment in open_sessions:
        order = by_order[payment.order_id]
        states.move(
            session,
            order,
            payment,
            PaymentStatus.CANCELLED,
            kind="PAYMENT_SESSION_CANCELLED",
            actor="worker",
        )
    for order in due:
        states.move(
            session, order, order, OrderStatus.EXPIRED, kind="ORDER_EXPIRED", actor="worker"
        )
    await session.flush()
    return len(due)
