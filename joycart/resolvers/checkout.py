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

from sqlalchemy import delete, select, update
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
from joycart.models import (
    CartItem,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    StockMovement,
    StockReason,
    User,
)
from joycart.resolvers import addresses, owed, payment_sessions, states
from joycart.resolvers.cart import _require_buyer, view_cart

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
MIN_ORDER_TOTAL = 100  # Razorpay's minimum: INR 1.00
MAX_ORDER_TOTAL = 50_00_000_00  # INR 50 lakh, in paise


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    payment: Payment
    created: bool


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    payment: Payment
    gateway_error: GatewayUnavailable | None
    created: bool = True  # False when the key returned an order placed earlier


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
    # One checkout per buyer at a time: the same cart cannot become two orders. NO KEY UPDATE:
    # the foreign-key checks of the buyer's own cancels (KEY SHARE) are not blocked by it.
    await session.execute(
        select(User.id).where(User.id == buyer.id).with_for_update(key_share=True)
    )
    cart = await view_cart(session, buyer=buyer)
    fingerprint = _fingerprint([(line.product.id, line.quantity) for line in cart.lines])
    existing = await session.scalar(
        select(Order).where(Order.buyer_id == buyer.id, Order.idempotency_key == idempotency_key)
    )
    if existing is not None:
        if cart.lines and existing.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This idempotency key was used for a different cart; use a new key.",
                field="idempotencyKey",
            )
        await addresses.same_address_as(session, existing, shipping_address_id)
        return PlacedOrder(
            existing, await payment_sessions.current_session(session, existing.id), created=False
        )
    if not cart.lines:
        raise CartEmpty("Your cart is empty.")
    ship_to = await addresses.checkout_address(session, buyer=buyer, address_id=shipping_address_id)
    total = cart.total
    if not MIN_ORDER_TOTAL <= total <= MAX_ORDER_TOTAL:
        raise InvalidInput(
            f"An order's total must be between {MIN_ORDER_TOTAL} and {MAX_ORDER_TOTAL} paise.",
            field="cart",
        )
    order = Order(
        id=uuid.uuid4(),
        buyer_id=buyer.id,
        status=OrderStatus.PENDING_PAYMENT,
        total_amount=total,
        currency="INR",
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        expires_at=datetime.now(UTC) + payment_window,
    )
    session.add(order)
    await session.flush()
    # Product-id order: concurrent checkouts over the same products never deadlock.
    for position, line in enumerate(sorted(cart.lines, key=lambda line: line.product.id)):
        taken = await session.scalar(
            update(Product)
            .where(
                Product.id == line.product.id,
                Product.deleted_at.is_(None),
                Product.stock >= line.quantity,
            )
            .values(stock=Product.stock - line.quantity)
            .returning(Product.id)
        )
        if taken is None:
            raise OutOfStock(
                f"Not enough {line.product.name!r} in stock for {line.quantity}.", field="cart"
            )
        session.add(
            StockMovement(
                product_id=line.product.id,
                delta=-line.quantity,
                reason=StockReason.CHECKOUT,
                order_id=order.id,
                actor_id=buyer.id,
            )
        )
        session.add(
            OrderItem(
                order_id=order.id,
                product_id=line.product.id,
                seller_id=line.product.seller_id,
                product_name=line.product.name,
                unit_price=line.product.price,
                currency=line.product.currency,
                quantity=line.quantity,
                cancelled_quantity=0,
                position=position,
            )
        )
    if ship_to is not None:
        addresses.ship_to(session, order, ship_to)
    payment = await payment_sessions.new_session(session, order=order, sequence=1, amount=total)
    await session.execute(delete(CartItem).where(CartItem.user_id == buyer.id))
    states.record(
        session,
        order,
        "ORDER_PLACED",
        actor=f"user:{buyer.id}",
        total=total,
        idempotency_key=idempotency_key,
    )
    await session.flush()
    return PlacedOrder(order, payment, created=True)


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
        order=placed.order, payment=payment, gateway_error=error, created=placed.created
    )
