"""Payment sessions: what an order owes now, and its one Razorpay order.

A session's Razorpay order is created once: under a call lease, looked up by receipt
before any second attempt. The committed `gateway_attempts` says whether a call may have happened.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.errors import GatewayUnavailable
from joycart.integrations import razorpay as rzp
from joycart.models import (
    Order,
    Payment,
    PaymentStatus,
)
from joycart.resolvers import jobs, states
from joycart.resolvers.locks import external_call_lock

log = logging.getLogger("joycart.payments")

OPEN_SESSION_STATES = (PaymentStatus.CREATED, PaymentStatus.FAILED)
_INSERT_PAYMENT = insert(Payment)


def receipt_for(order: Order, sequence: int) -> str:
    return str(order.id) if sequence == 1 else f"{order.id}/{sequence}"


async def current_session(
    session: AsyncSession, order_id: uuid.UUID, *, lock: bool = False
) -> Payment:
    """The order's newest payment session (every order has at least one)."""
    stmt = (
        select(Payment)
        .where(Payment.order_id == order_id)
        .order_by(Payment.sequence.desc())
        .limit(1)
    )
    payment = await session.scalar(stmt.with_for_update() if lock else stmt)
    assert payment is not None, "every order has a payment session"
    return payment


async def new_session(
    session: AsyncSession, *, order: Order, sequence: int, amount: int
) -> Payment:
    """A payment session for what the order owes now, and the job that owes its Razorpay order."""
    payment = Payment(
        id=uuid.uuid4(),
        order_id=order.id,
        sequence=sequence,
        receipt=receipt_for(order, sequence),
        amount=amount,
        currency=order.currency,
        status=PaymentStatus.CREATED,
        gateway_attempts=0,
    )
    session.add(payment)
    await session.flush()
    await jobs.enqueue(
        session,
        jobs.CREATE_GATEWAY_ORDER,
        {"payment_id": str(payment.id)},
        dedupe_key=f"gateway-order:{payment.id}",
    )
    return payment


async def first_session(session: AsyncSession, *, order: Order, now: datetime) -> Payment:
    """`new_session` for a new order's first session (checkout), written at once with one
    prebuilt INSERT: nothing else of the order is pending in the session to flush before it."""
    values = {
        "id": uuid.uuid4(),
        "order_id": order.id,
        "sequence": 1,
        "receipt": receipt_for(order, 1),
        "amount": order.total_amount,
        "currency": order.currency,
        "status": PaymentStatus.CREATED,
        "razorpay_order_id": None,
        "razorpay_payment_id": None,
        "gateway_attempts": 0,
        "last_gateway_error": None,
        "created_at": now,
        "updated_at": now,
    }
    conn = await session.connection()
    await conn.execute(_INSERT_PAYMENT, values)
    await jobs.enqueue(
        session,
        jobs.CREATE_GATEWAY_ORDER,
        {"payment_id": str(values["id"])},
        dedupe_key=f"gateway-order:{values['id']}",
        now=now,
    )
    return Payment(**values)


async def open_gateway_session(
    sessions: Sessions, gateway: rzp.PaymentGateway, payment_id: uuid.UUID, *, wait: bool
) -> Payment:
    """Give the session exactly one Razorpay order, written only if the session is still open and
    current (else the orphan is recorded and the current session returned)."""
    async with external_call_lock(sessions, f"gateway-order:{payment_id}", wait=wait) as lease:
        sessions = lease.sessions
        async with sessions() as session, session.begin():
            payment = await session.get_one(Payment, payment_id)
            if payment.razorpay_order_id or payment.status not in OPEN_SESSION_STATES:
                return payment
            order = await session.get_one(Order, payment.order_id)
            earlier_attempts = payment.gateway_attempts
            payment.gateway_attempts += 1
        try:
            found: rzp.GatewayOrder | None = None
            if earlier_attempts:
                # An earlier call may have created it and lost the answer: look before creating.
                candidates = await gateway.find_orders_by_receipt(payment.receipt)
                found = next((o for o in candidates if o.amount == payment.amount), None)
            created = found or await gateway.create_order(
                amount=payment.amount,
                currency=payment.currency,
                receipt=payment.receipt,
                notes={"joycart_order_id": str(order.id), "joycart_payment_id": str(payment.id)},
            )
        except rzp.GatewayError as exc:
            async with sessions() as session, session.begin():
                row = await session.get_one(Payment, payment_id)
                row.last_gateway_error = str(exc)[:500]
            raise GatewayUnavailable(
                "Razorpay could not be reached; your order is saved. Retry checkout with the "
                "same idempotency key in a moment."
            ) from exc
        async with sessions() as session, session.begin():
            await lease.confirm(session)  # the result is written only while the lease is ours
            # Order first, then its payment: the lock order of every other writer.
            order = await session.get_one(
                Order, payment.order_id, with_for_update=True, populate_existing=True
            )
            row = await session.get_one(
                Payment, payment_id, with_for_update=True, populate_existing=True
            )
            await jobs.settle(session, f"gateway-order:{payment_id}")
            current = await current_session(session, order.id)
            if row.razorpay_order_id is None and (
                row.status not in OPEN_SESSION_STATES or current.id != row.id
            ):
                # Superseded or ended during the call: never hand its Razorpay order out.
                states.record(
                    session,
                    order,
                    "ORPHAN_GATEWAY_ORDER",
                    actor="system",
                    subject=row,
                    razorpay_order_id=created.id,
                    amount=row.amount,
                    session_status=row.status.value,
                )
                return current
            if row.razorpay_order_id is None:
                row.razorpay_order_id = created.id
                row.last_gateway_error = None
                states.record(
                    session,
                    order,
                    "PAYMENT_SESSION_OPENED",
                    actor="system",
                    subject=row,
                    razorpay_order_id=created.id,
                    amount=row.amount,
                    found_by_receipt=found is not None,
                )
            return row
