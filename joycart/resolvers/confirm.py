"""What the SPA reports after Razorpay Checkout: verified, logged, and then checked at Razorpay.

The browser's word never pays an order. A valid Checkout signature only records that the buyer
submitted a payment, then asks Razorpay's API about the session (the fetch fallback Razorpay
recommends when a webhook is late); a capture it reports goes through the webhook code path.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from joycart import validation
from joycart.db import Sessions
from joycart.errors import InvalidInput, NotFound
from joycart.integrations import razorpay as rzp
from joycart.models import Order, Payment, User
from joycart.resolvers import states
from joycart.resolvers.reconcile import apply_capture

log = logging.getLogger("joycart.payments")

MAX_GATEWAY_TEXT = 100


async def confirm_payment(
    sessions: Sessions,
    gateway: rzp.PaymentGateway,
    *,
    buyer: User,
    order_id: str,
    razorpay_order_id: str,
    razorpay_payment_id: str,
    razorpay_signature: str,
) -> Order:
    """Record a verified Checkout result, then let Razorpay's own answer settle the order."""
    oid = validation.parse_id(order_id, field="orderId", what="order")
    for field, value in (
        ("razorpayOrderId", razorpay_order_id),
        ("razorpayPaymentId", razorpay_payment_id),
        ("razorpaySignature", razorpay_signature),
    ):
        if not 1 <= len(value) <= MAX_GATEWAY_TEXT or not value.isascii():
            raise InvalidInput(f"{field} is not a value Razorpay Checkout returns.", field=field)
    async with sessions() as session, session.begin():
        order = await session.get(Order, oid, with_for_update=True)
        if order is None or order.buyer_id != buyer.id:
            raise NotFound("No order with that ID.", field="orderId")
        payment = await session.scalar(
            select(Payment).where(
                Payment.order_id == order.id, Payment.razorpay_order_id == razorpay_order_id
            )
        )
        if payment is None:
            raise InvalidInput(
                "That Razorpay order does not belong to this order.", field="razorpayOrderId"
            )
        # The signature is checked against the Razorpay order id we stored, not the browser's.
        assert payment.razorpay_order_id is not None
        if not gateway.payment_signature_is_valid(
            order_id=payment.razorpay_order_id,
            payment_id=razorpay_payment_id,
            signature=razorpay_signature,
        ):
            raise InvalidInput("The payment signature does not verify.", field="razorpaySignature")
        states.record(
            session,
            order,
            "PAYMENT_SUBMITTED",
            actor=f"buyer:{buyer.id}",
            razorpay_order_id=payment.razorpay_order_id,
            razorpay_payment_id=razorpay_payment_id,
        )
    try:
        for reported in await gateway.order_payments(payment.razorpay_order_id):
            if reported.status == "captured":
                await apply_capture(sessions, reported)
    except rzp.GatewayError as exc:  # the webhook will settle it; nothing is lost
        log.warning("order %s: could not ask Razorpay after Checkout: %s", order.id, exc)
    async with sessions() as session:
        return await session.get_one(Order, oid)
