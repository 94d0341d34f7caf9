"""Compare our records with Razorpay's, and optionally feed its answers through the webhook path.

Finds: payments captured at Razorpay that we never saw captured, refunds still INITIATED past an
age, and captures whose amount did not match what the session owed. `apply=True` turns what
Razorpay reports into synthetic events recorded in the webhook inbox and applied by the same
code as real webhooks, so the rules (and the order event log) stay in one place.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from joycart.db import Sessions
from joycart.integrations import razorpay as rzp
from joycart.models import Capture, Payment, PaymentStatus, Refund, RefundStatus
from joycart.resolvers.inbox import apply_recorded, record_event

log = logging.getLogger("joycart.reconcile")

LOOKBACK = timedelta(days=7)


@dataclass
class Report:
    unrecorded_captures: list[str] = field(default_factory=list)
    stale_refunds: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"captured at Razorpay, not recorded here: {len(self.unrecorded_captures)}"]
        out += [f"  {line}" for line in self.unrecorded_captures]
        out.append(f"refunds still INITIATED past the age limit: {len(self.stale_refunds)}")
        out += [f"  {line}" for line in self.stale_refunds]
        out.append(f"amount or currency mismatches: {len(self.mismatches)}")
        out += [f"  {line}" for line in self.mismatches]
        if self.applied:
            out.append(f"applied through the webhook path: {len(self.applied)}")
            out += [f"  {line}" for line in self.applied]
        if self.errors:
            out.append(f"could not check: {len(self.errors)}")
            out += [f"  {line}" for line in self.errors]
        return out


async def _apply(sessions: Sessions, event_type: str, payload: dict[str, Any]) -> str:
    envelope = {"entity": "event", "event": event_type, "payload": payload, "source": "reconcile"}
    body = orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)
    row_id, _ = await record_event(
        sessions, body, envelope, f"reconcile-{hashlib.sha256(body).hexdigest()[:12]}"
    )
    return await apply_recorded(sessions, row_id)


async def apply_capture(sessions: Sessions, gp: rzp.GatewayPayment) -> str:
    """What Razorpay's API reports captured, applied as its `payment.captured` webhook would be."""
    entity = {
        "id": gp.id,
        "order_id": gp.order_id,
        "amount": gp.amount,
        "currency": gp.currency,
        "status": gp.status,
    }
    return await _apply(sessions, "payment.captured", {"payment": {"entity": entity}})


async def reconcile(
    sessions: Sessions,
    gateway: rzp.PaymentGateway,
    *,
    refund_age: timedelta,
    apply: bool,
    session_age: timedelta = timedelta(0),
) -> Report:
    """Ask Razorpay about sessions not known to be paid and refunds not yet settled."""
    report = Report()
    now = datetime.now(UTC)
    async with sessions() as session:
        # A CAPTURED session already has its capture; every other one may have one we missed.
        open_sessions = (
            await session.scalars(
                select(Payment).where(
                    Payment.razorpay_order_id.is_not(None),
                    Payment.status != PaymentStatus.CAPTURED,
                    Payment.created_at > now - LOOKBACK,
                    Payment.created_at <= now - session_age,
                )
            )
        ).all()
        known = set(
            (
                await session.scalars(
                    select(Capture.gateway_payment_id).where(
                        Capture.payment_id.in_([p.id for p in open_sessions])
                    )
                )
            ).all()
        )
        mismatched = (
            await session.scalars(
                select(Capture).where(Capture.owed.is_(False), Capture.created_at > now - LOOKBACK)
            )
        ).all()
        stale = (
            await session.scalars(
                select(Refund).where(
                    Refund.status == RefundStatus.INITIATED, Refund.created_at < now - refund_age
                )
            )
        ).all()
        capture_payment = dict(
            (
                await session.execute(
                    select(Capture.id, Capture.gateway_payment_id).where(
                        Capture.id.in_([r.capture_id for r in stale])
                    )
                )
            ).all()
        )
    for payment in open_sessions:
        assert payment.razorpay_order_id is not None
        try:
            found = await gateway.order_payments(payment.razorpay_order_id)
        except rzp.GatewayError as exc:
            report.errors.append(f"order {payment.razorpay_order_id}: {exc}")
            continue
        for gp in found:
            if gp.status != "captured" or gp.id in known:
                continue
            report.unrecorded_captures.append(
                f"{gp.id} {gp.amount} {gp.currency} for {payment.razorpay_order_id} "
                f"(our order {payment.order_id})"
            )
            if apply:
                report.applied.append(f"{gp.id}: {await apply_capture(sessions, gp)}")
    for capture in mismatched:
        report.mismatches.append(
            f"{capture.gateway_payment_id}: captured {capture.amount} {capture.currency}, not owed"
        )
    for refund in stale:
        try:
            if refund.gateway_refund_id:
                answer: rzp.GatewayRefund | None = await gateway.fetch_refund(
                    refund.gateway_refund_id
                )
            else:
                listed = await gateway.list_refunds(capture_payment[refund.capture_id])
                answer = next(
                    (r for r in listed if r.notes.get("joycart_refund_id") == str(refund.id)), None
                )
        except rzp.GatewayError as exc:
            report.errors.append(f"refund {refund.id}: {exc}")
            continue
        state = answer.status if answer else "not found at Razorpay (the worker will submit it)"
        report.stale_refunds.append(
            f"{refund.id} {refund.amount} since {refund.created_at:%Y-%m-%d %H:%M}: {state}"
        )
        if apply and answer is not None and answer.status in ("processed", "failed"):
            refund_entity: dict[str, object] = {
                "id": answer.id,
                "payment_id": answer.payment_id,
                "amount": answer.amount,
                "status": answer.status,
                "notes": answer.notes,
            }
            outcome = await _apply(
                sessions, f"refund.{answer.status}", {"refund": {"entity": refund_entity}}
            )
            report.applied.append(f"{refund.id}: {outcome}")
    return report
