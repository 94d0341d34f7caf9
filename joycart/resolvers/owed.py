"""After a commit, the Razorpay calls a mutation owes.

The rule: the mutation's transaction (with its retry) commits first and names the calls it owes;
each owed call also has a worker job created in that committed transaction. The calls here are
made once; any failure after the commit (gateway unavailable, a busy lock, a lock timeout, a
database error on the follow-up write) is logged and left to the worker, never reported as a
failure of what was committed. The answer carries the committed state re-read from the database.
"""

from __future__ import annotations

import logging
import uuid
from typing import TypeVar

from joycart.bootstrap import Services
from joycart.db import Sessions
from joycart.errors import GatewayUnavailable
from joycart.integrations.razorpay import PaymentGateway
from joycart.models import Payment, Refund
from joycart.resolvers import payment_sessions, refunds

log = logging.getLogger("joycart.owed")

Row = TypeVar("Row", Refund, Payment)


async def submit_refund(services: Services, refund: Refund) -> Refund:
    """Ask Razorpay for the committed refund; on any failure, the refund as committed."""
    try:
        return await refunds.submit_refund(
            services.sessions, services.gateway, refund.id, wait=True
        )
    except Exception as exc:  # committed: the worker makes this call instead
        log.warning("refund %s committed; gateway call left to the worker: %r", refund.id, exc)
    return await _reread(services, Refund, refund.id, refund)


async def open_payment_session(services: Services, payment: Payment) -> Payment:
    """Open the committed payment session at Razorpay; on any failure, the session as committed."""
    try:
        return await payment_sessions.open_gateway_session(
            services.sessions, services.gateway, payment.id, wait=True
        )
    except Exception as exc:  # committed: the worker makes this call instead
        log.warning("payment %s committed; gateway call left to the worker: %r", payment.id, exc)
    return await _reread(services, Payment, payment.id, payment)


async def open_checkout_session(
    sessions: Sessions, gateway: PaymentGateway, payment: Payment
) -> tuple[Payment, GatewayUnavailable | None]:
    """Checkout's owed call: the session, or the committed one with PAYMENT_GATEWAY_UNAVAILABLE
    (a report of state: the order exists and a retry with the same key finishes it)."""
    try:
        opened = await payment_sessions.open_gateway_session(
            sessions, gateway, payment.id, wait=True
        )
        return opened, None
    except GatewayUnavailable as exc:
        return payment, exc
    except Exception as exc:  # committed: a busy lock or DB error is not the order failing
        log.warning("payment %s committed; opening it left to a retry: %r", payment.id, exc)
        return payment, GatewayUnavailable(
            "The order is placed but its payment is not ready yet; check out again with the "
            "same idempotency key."
        )


async def _reread(services: Services, model: type[Row], row_id: uuid.UUID, fallback: Row) -> Row:
    """The row as the database has it now; the committed copy if even that read fails."""
    try:
        async with services.sessions() as session:
            found = await session.get(model, row_id)
        return found if found is not None else fallback
    except Exception as exc:  # the committed copy is still a true answer
        log.warning("re-reading %s %s failed: %r", model.__name__, row_id, exc)
        return fallback
