"""`retryRefund`: a FAILED refund asked again, once, and only if Razorpay holds no live refund
of the same units (read from Razorpay's own list of the payment's refunds, every page)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.errors import GatewayUnavailable, InvalidState, NotFound
from joycart.integrations import razorpay as rzp
from joycart.models import Capture, Order, OrderItem, Refund, RefundStatus, User
from joycart.resolvers import states
from joycart.resolvers.refunds import create_refund, owe_refund_call

log = logging.getLogger("joycart.payments")


async def _retryable(session: AsyncSession, actor: User, rid: uuid.UUID) -> tuple[Order, Refund]:
    failed = await session.get(Refund, rid)
    if failed is None:
        raise NotFound("No refund with that ID.", field="refundId")
    order = await session.get_one(
        Order, failed.order_id, with_for_update=True, populate_existing=True
    )
    failed = await session.get_one(Refund, rid, with_for_update=True, populate_existing=True)
    allowed = {order.buyer_id}
    if failed.order_item_id is not None:
        item = await session.get_one(OrderItem, failed.order_item_id)
        allowed.add(item.seller_id)
    if actor.id not in allowed:
        raise NotFound("No refund with that ID.", field="refundId")
    if failed.status is not RefundStatus.FAILED:
        raise InvalidState(
            f"Only a failed refund can be asked again; this one is {failed.status.value}."
        )
    if await session.scalar(select(Refund.id).where(Refund.retry_of_id == failed.id)):
        raise InvalidState("This refund was already asked again.")
    return order, failed


async def retry_refund(
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    gateway: rzp.PaymentGateway,
    *,
    actor: User,
    refund_id: str,
) -> Refund:
    """Ask again for a FAILED refund, once, and only if Razorpay holds no live refund of it."""
    rid = validation.parse_id(refund_id, field="refundId", what="refund")
    async with transaction() as session:
        _, failed = await _retryable(session, actor, rid)
        payment_id = (await session.get_one(Capture, failed.capture_id)).gateway_payment_id
    try:  # outside any transaction: no row lock or pooled connection held during the call
        held = await gateway.list_refunds(payment_id)
    except rzp.GatewayError as exc:
        log.warning("retry of refund %s not checked at Razorpay: %s", rid, exc)
        raise GatewayUnavailable(
            "Razorpay could not be asked whether this refund went through; nothing was changed. "
            "Try again in a moment."
        ) from exc
    live = [
        r for r in held if r.notes.get("joycart_refund_id") == str(rid) and r.status != "failed"
    ]
    if live:
        raise InvalidState(
            f"Razorpay already holds refund {live[0].id} ({live[0].status}) for these units; "
            "it will be settled by Razorpay's webhook, so it is not asked again."
        )
    async with transaction() as session:
        order, failed = await _retryable(session, actor, rid)
        capture = await session.get_one(Capture, failed.capture_id)
        refund = create_refund(
            session,
            order=order,
            capture=capture,
            amount=failed.amount,
            reason=failed.reason,
            order_item_id=failed.order_item_id,
            quantity=failed.quantity,
            note=failed.note,
        )
        refund.retry_of_id = failed.id
        await owe_refund_call(session, refund)
        states.record(
            session,
            order,
            "REFUND_RETRIED",
            actor=f"user:{actor.id}",
            subject=refund,
            failed_refund_id=str(failed.id),
            amount=refund.amount,
        )
        return refund
