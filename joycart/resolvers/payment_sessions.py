"""Payment sessions: what an order owes now, and its one Razorpay order.

A session's Razorpay order is created once: under a call lease, looked up by receipt
before any second attempt. The committed `gateway_attempts` says whether a call may have happened.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.db import Sessions
from joycart.errors import GatewayUnavailable
from joycart.integrations import razorpay as rzp
from joycart.models import (
    Order,
    Payment,
    PaymentStatus,
)
from joycart.models.base import detached
from joycart.resolvers import events, jobs
from joycart.resolvers.locks import external_call_lock_with

log = logging.getLogger("joycart.payments")

OPEN_SESSION_STATES = (PaymentStatus.CREATED, PaymentStatus.FAILED)

# The statements of opening a session at Razorpay (its hot path, once per checkout), built once.
_PAYMENTS = Payment.__table__
_INSERT_PAYMENT = insert(Payment)
# Count an attempt, only while the session is open and has no Razorpay order: one statement
# both checks and claims, and returns the row the call is made for.
_CLAIM_ATTEMPT = (
    update(Payment)
    .where(
        Payment.id == bindparam("payment"),
        Payment.razorpay_order_id.is_(None),
        Payment.status.in_(OPEN_SESSION_STATES),
    )
    .values(gateway_attempts=Payment.gateway_attempts + 1, updated_at=bindparam("now"))
    .returning(*_PAYMENTS.c)
)
_LOCK_ORDER = select(Order.id).where(Order.id == bindparam("order")).with_for_update()
_LOCK_PAYMENT = select(_PAYMENTS).where(Payment.id == bindparam("payment")).with_for_update()
_CURRENT = (
    select(_PAYMENTS)
    .where(Payment.order_id == bindparam("order"))
    .order_by(Payment.sequence.desc())
    .limit(1)
)
_OPENED = (
    update(Payment)
    .where(Payment.id == bindparam("payment"))
    .values(
        razorpay_order_id=bindparam("razorpay_order"),
        last_gateway_error=None,
        updated_at=bindparam("now"),
    )
)


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
    session: AsyncSession,
    *,
    order: Order,
    sequence: int,
    amount: int,
    now: datetime | None = None,
) -> Payment:
    """A payment session for what the order owes now, and the job that owes its Razorpay order.

    Written at once by one prebuilt INSERT (checkout opens one per order), after the session's
    pending changes: a renewal retires the current session first. Returns a detached copy of
    the row as written."""
    await session.flush()  # nothing pending (checkout) sends nothing
    now = now or datetime.now(UTC)
    values = {
        "id": uuid.uuid4(),
        "order_id": order.id,
        "sequence": sequence,
        "receipt": receipt_for(order, sequence),
        "amount": amount,
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
    return detached(Payment, values)


async def open_gateway_session(
    sessions: Sessions, gateway: rzp.PaymentGateway, payment_id: uuid.UUID, *, wait: bool
) -> Payment:
    """Give the session exactly one Razorpay order, written only if the session is still open and
    current (else the orphan is recorded and the current session returned)."""

    async def claim(session: AsyncSession) -> Row[Any] | None:
        conn = await session.connection()
        now = datetime.now(UTC)
        return (await conn.execute(_CLAIM_ATTEMPT, {"payment": payment_id, "now": now})).first()

    # The attempt is claimed in the transaction that takes the lease, and the lease ends in
    # the one that writes the result: two transactions around the call, not four.
    key = f"gateway-order:{payment_id}"
    async with external_call_lock_with(sessions, key, wait=wait, first=claim) as (lease, row):
        sessions = lease.sessions
        if row is None:  # it has its Razorpay order, or it is no longer open
            async with sessions() as session:
                return await session.get_one(Payment, payment_id)
        payment = detached(Payment, row._mapping)
        try:
            found: rzp.GatewayOrder | None = None
            if payment.gateway_attempts > 1:
                # An earlier call may have created it and lost the answer: look before creating.
                candidates = await gateway.find_orders_by_receipt(payment.receipt)
                found = next((o for o in candidates if o.amount == payment.amount), None)
            created = found or await gateway.create_order(
                amount=payment.amount,
                currency=payment.currency,
                receipt=payment.receipt,
                notes={
                    "joycart_order_id": str(payment.order_id),
                    "joycart_payment_id": str(payment.id),
                },
            )
        except rzp.GatewayError as exc:
            async with sessions() as session, session.begin():
                failed = await session.get_one(Payment, payment_id)
                failed.last_gateway_error = str(exc)[:500]
            raise GatewayUnavailable(
                "Razorpay could not be reached; your order is saved. Retry checkout with the "
                "same idempotency key in a moment."
            ) from exc
        async with sessions() as session, session.begin():
            await lease.confirm(session)  # the result is written only while the lease is ours
            written = await _write_gateway_order(session, payment, created, found is not None)
            await lease.release_in(session)
            return written


async def _write_gateway_order(
    session: AsyncSession, payment: Payment, created: rzp.GatewayOrder, found: bool
) -> Payment:
    """Under the lease: the Razorpay order onto the session, or recorded as an orphan."""
    conn = await session.connection()
    # Order first, then its payment: the lock order of every other writer.
    await conn.execute(_LOCK_ORDER, {"order": payment.order_id})
    locked = (await conn.execute(_LOCK_PAYMENT, {"payment": payment.id})).one()
    await jobs.settle(session, f"gateway-order:{payment.id}")
    current = (await conn.execute(_CURRENT, {"order": payment.order_id})).one()
    subject = ("PAYMENT", payment.id)
    if locked.razorpay_order_id is None and (
        locked.status not in OPEN_SESSION_STATES or current.id != locked.id
    ):
        # Superseded or ended during the call: never hand its Razorpay order out.
        await events.record_now(
            session,
            payment.order_id,
            "ORPHAN_GATEWAY_ORDER",
            actor="system",
            subject=subject,
            razorpay_order_id=created.id,
            amount=locked.amount,
            session_status=locked.status.value,
        )
        return detached(Payment, current._mapping)
    if locked.razorpay_order_id is not None:
        return detached(Payment, locked._mapping)
    now = datetime.now(UTC)
    await conn.execute(_OPENED, {"payment": payment.id, "razorpay_order": created.id, "now": now})
    await events.record_now(
        session,
        payment.order_id,
        "PAYMENT_SESSION_OPENED",
        actor="system",
        subject=subject,
        razorpay_order_id=created.id,
        amount=locked.amount,
        found_by_receipt=found,
    )
    opened = {"razorpay_order_id": created.id, "last_gateway_error": None, "updated_at": now}
    return detached(Payment, dict(locked._mapping) | opened)
