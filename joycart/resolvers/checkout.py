"""Checkout: one order per (buyer, key), stock taken atomically, then a Razorpay order.

Phase one is a single transaction (stock, order, items, ledger, payment session, the job that
owes the Razorpay call); phase two opens the Razorpay order outside it. A failure in phase two
leaves a complete order that a retry with the same key, or the worker, finishes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.errors import (
    CartEmpty,
    GatewayUnavailable,
    IdempotencyKeyReused,
    InvalidInput,
    OutOfStock,
)
from joycart.integrations.razorpay import PaymentGateway
from joycart.models import Order, OrderItem, OrderStatus, Payment, PaymentStatus, User
from joycart.resolvers import addresses, events, owed, payment_sessions
from joycart.resolvers import checkout_rows as rows
from joycart.resolvers.cart import _require_buyer

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
MIN_ORDER_TOTAL = 100  # Razorpay's minimum: INR 1.00
MAX_ORDER_TOTAL = 50_00_000_00  # INR 50 lakh, in paise


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    payment: Payment
    created: bool
    items: list[OrderItem] | None = None  # the rows written, for a new order


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    payment: Payment
    gateway_error: GatewayUnavailable | None
    created: bool = True  # False when the key returned an order placed earlier
    items: list[OrderItem] | None = None  # a new order's items as written (None: read them)


def _fingerprint(lines: list[tuple[uuid.UUID, int]]) -> str:
    text = ";".join(f"{pid}:{qty}" for pid, qty in sorted(lines))
    return hashlib.sha256(text.encode()).hexdigest()


async def place_order(
    session: AsyncSession,
    *,
    buyer: User,
    idempotency_key: str,
    payment_window: timedelta,
    shipping_address_id: str | None = None,
) -> PlacedOrder:
    """Turn the cart into one order, holding its stock; the same key returns the same order.

    The order ships to a copy of the address named, else of the buyer's default, else it has
    none yet. A repeat that names an address must name the one the order ships to.
    """
    _require_buyer(buyer)
    if not KEY_RE.match(idempotency_key):
        raise InvalidInput(
            "idempotencyKey must be 8 to 128 characters of letters, digits, '-' or '_'.",
            field="idempotencyKey",
        )
    conn = await session.connection()
    # One checkout per buyer at a time: the same cart cannot become two orders. Its own
    # statement, before the reads: a read in the same statement would see the snapshot taken
    # before the lock was granted, not what a checkout that held it committed.
    await rows.lock_buyer(conn, buyer.id)
    lines = await rows.cart_lines(conn, buyer.id)
    fingerprint = _fingerprint([(line.product_id, line.quantity) for line in lines])
    existing = await rows.existing_order(conn, buyer.id, idempotency_key)
    if existing is not None:
        if lines and existing.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This idempotency key was used for a different cart; use a new key.",
                field="idempotencyKey",
            )
        await addresses.same_address_as(session, existing, shipping_address_id)
        return PlacedOrder(
            existing, await payment_sessions.current_session(session, existing.id), created=False
        )
    if not lines:
        raise CartEmpty("Your cart is empty.")
    ship_to = await addresses.checkout_address(session, buyer=buyer, address_id=shipping_address_id)
    total = sum(line.price * line.quantity for line in lines)
    if not MIN_ORDER_TOTAL <= total <= MAX_ORDER_TOTAL:
        raise InvalidInput(
            f"An order's total must be between {MIN_ORDER_TOTAL} and {MAX_ORDER_TOTAL} paise.",
            field="cart",
        )
    now = datetime.now(UTC)
    order = await rows.insert_order(
        conn,
        {
            "id": uuid.uuid4(),
            "buyer_id": buyer.id,
            "status": OrderStatus.PENDING_PAYMENT,
            "total_amount": total,
            "currency": "INR",
            "idempotency_key": idempotency_key,
            "request_fingerprint": fingerprint,
            "expires_at": now + payment_window,
            "paid_at": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    # Product-id order: concurrent checkouts over the same products never deadlock.
    lines = sorted(lines, key=lambda line: line.product_id)
    for line in lines:
        if not await rows.take_stock(conn, line, now):
            raise OutOfStock(
                f"Not enough {line.name!r} in stock for {line.quantity}.", field="cart"
            )
    items = await rows.insert_lines(conn, order, lines, actor_id=buyer.id, now=now)
    if ship_to is not None:
        addresses.ship_to(session, order, ship_to)  # flushed by `new_session`
    payment = await payment_sessions.new_session(
        session, order=order, sequence=1, amount=total, now=now
    )
    await rows.clear_cart(conn, buyer.id)
    await events.record_now(
        session,
        order.id,
        "ORDER_PLACED",
        actor=f"user:{buyer.id}",
        total=total,
        idempotency_key=idempotency_key,
    )
    return PlacedOrder(order, payment, created=True, items=items)


async def checkout(
    sessions: Sessions,
    *,
    buyer: User,
    idempotency_key: str,
    gateway: PaymentGateway,
    payment_window: timedelta,
    shipping_address_id: str | None = None,
) -> CheckoutResult:
    """Place the order (committed), then make sure its Razorpay order exists."""
    async with sessions() as session, session.begin():
        placed = await place_order(
            session,
            buyer=buyer,
            idempotency_key=idempotency_key,
            payment_window=payment_window,
            shipping_address_id=shipping_address_id,
        )
    payment = placed.payment
    error: GatewayUnavailable | None = None
    if payment.status is PaymentStatus.CREATED and payment.razorpay_order_id is None:
        payment, error = await owed.open_checkout_session(sessions, gateway, payment)
    return CheckoutResult(
        order=placed.order,
        payment=payment,
        gateway_error=error,
        created=placed.created,
        items=placed.items,
    )
