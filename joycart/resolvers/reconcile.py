"""Compare our records with Razorpay's, and optionally feed its answers through the webhook path.

Finds: payments captured at Razorpay that we never saw captured (asking only about sessions that
can still be paid: open, or closed less than a day ago), refunds still INITIATED past an age, and
captures whose amount did not match what the session owed. It reads in keyset pages and lets its
caller renew a lease between them. With `apply=True` it also queues again every owed Razorpay
call whose job is DEAD or missing, and it always lists the DEAD jobs. `apply=True` turns what
Razorpay reports into synthetic events recorded in the webhook inbox and applied by the same
code as real webhooks, so the rules (and the order event log) stay in one place.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, or_, select, tuple_

from joycart.db import Sessions
from joycart.integrations import razorpay as rzp
from joycart.models import Capture, Payment, PaymentStatus, Refund, RefundStatus
from joycart.resolvers import requeue
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
    requeued: list[str] = field(default_factory=list)  # owed calls that had no live job
    dead_jobs: list[str] = field(default_factory=list)
    sessions_asked: int = 0

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
        if self.requeued:
            out.append(
                f"owed calls queued again (their job was DEAD or missing): {len(self.requeued)}"
            )
            out += [f"  {line}" for line in self.requeued]
        out.append(f"DEAD jobs (stopped retrying; see `joycart jobs`): {len(self.dead_jobs)}")
        out += [f"  {line}" for line in self.dead_jobs]
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


PAYABLE_AFTER_CLOSE = timedelta(hours=24)  # a buyer mid-payment when the session closed
PAGE = 100

Renew = Callable[[], Awaitable[None]]


def _payable(now: datetime, session_age: timedelta) -> Any:
    """Sessions that can still be paid: open, or closed less than a day ago; never CAPTURED."""
    return and_(
        Payment.razorpay_order_id.is_not(None),
        Payment.status != PaymentStatus.CAPTURED,
        or_(  # FAILED is open: the buyer may try again on the same Razorpay order
            Payment.status.in_([PaymentStatus.CREATED, PaymentStatus.FAILED]),
            Payment.updated_at > now - PAYABLE_AFTER_CLOSE,
        ),
        Payment.created_at > now - LOOKBACK,
        Payment.created_at <= now - session_age,
    )


async def _sessions_page(
    sessions: Sessions, now: datetime, session_age: timedelta, after: tuple[datetime, Any] | None
) -> tuple[list[Payment], set[str]]:
    async with sessions() as session:
        query = select(Payment).where(_payable(now, session_age))
        if after is not None:
            query = query.where(tuple_(Payment.created_at, Payment.id) > tuple_(*after))
        page = list(
            (
                await session.scalars(query.order_by(Payment.created_at, Payment.id).limit(PAGE))
            ).all()
        )
        known = set(
            (
                await session.scalars(
                    select(Capture.gateway_payment_id).where(
                        Capture.payment_id.in_([p.id for p in page])
                    )
                )
            ).all()
        )
    return page, known


async def _ask_about_sessions(
    sessions: Sessions,
    gateway: rzp.PaymentGateway,
    report: Report,
    *,
    now: datetime,
    session_age: timedelta,
    apply: bool,
    renew: Renew | None,
) -> None:
    after: tuple[datetime, Any] | None = None
    while True:
        page, known = await _sessions_page(sessions, now, session_age, after)
        for payment in page:
            assert payment.razorpay_order_id is not None
            report.sessions_asked += 1
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
        if len(page) < PAGE:
            return
        after = (page[-1].created_at, page[-1].id)
        if renew is not None:
            await renew()


async def _ask_about_refunds(
    sessions: Sessions,
    gateway: rzp.PaymentGateway,
    report: Report,
    *,
    now: datetime,
    refund_age: timedelta,
    apply: bool,
    renew: Renew | None,
) -> None:
    after: tuple[datetime, Any] | None = None
    while True:
        async with sessions() as session:
            query = select(Refund).where(
                Refund.status == RefundStatus.INITIATED, Refund.created_at < now - refund_age
            )
            if after is not None:
                query = query.where(tuple_(Refund.created_at, Refund.id) > tuple_(*after))
            stale = list(
                (
                    await session.scalars(query.order_by(Refund.created_at, Refund.id).limit(PAGE))
                ).all()
            )
            capture_payment = dict(
                (
                    await session.execute(
                        select(Capture.id, Capture.gateway_payment_id).where(
                            Capture.id.in_([r.capture_id for r in stale])
                        )
                    )
                ).all()
            )
        for refund in stale:
            await _ask_about_refund(sessions, gateway, report, refund, capture_payment, apply)
        if len(stale) < PAGE:
            return
        after = (stale[-1].created_at, stale[-1].id)
        if renew is not None:
            await renew()


async def _ask_about_refund(
    sessions: Sessions,
    gateway: rzp.PaymentGateway,
    report: Report,
    refund: Refund,
    capture_payment: dict[Any, str],
    apply: bool,
) -> None:
    try:
        if refund.gateway_refund_id:
            answer: rzp.GatewayRefund | None = await gateway.fetch_refund(refund.gateway_refund_id)
        else:
            listed = await gateway.list_refunds(capture_payment[refund.capture_id])
            answer = next(
                (r for r in listed if r.notes.get("joycart_refund_id") == str(refund.id)), None
            )
    except rzp.GatewayError as exc:
        report.errors.append(f"refund {refund.id}: {exc}")
        return
    state = answer.status if answer else "not found at Razorpay (its submission is owed)"
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


async def reconcile(
    sessions: Sessions,
    gateway: rzp.PaymentGateway,
    *,
    refund_age: timedelta,
    apply: bool,
    session_age: timedelta = timedelta(0),
    now: datetime | None = None,
    renew: Renew | None = None,
) -> Report:
    """Ask Razorpay, page by page, about payable sessions and unsettled refunds; owe lost calls.

    `renew` is called between pages (the worker renews its job lease there).
    """
    report = Report()
    now = now if now is not None else datetime.now(UTC)
    async with sessions() as session:
        mismatched = (
            await session.scalars(
                select(Capture).where(Capture.owed.is_(False), Capture.created_at > now - LOOKBACK)
            )
        ).all()
    for capture in mismatched:
        report.mismatches.append(
            f"{capture.gateway_payment_id}: captured {capture.amount} {capture.currency}, not owed"
        )
    await _ask_about_sessions(
        sessions, gateway, report, now=now, session_age=session_age, apply=apply, renew=renew
    )
    await _ask_about_refunds(
        sessions, gateway, report, now=now, refund_age=refund_age, apply=apply, renew=renew
    )
    async with sessions() as session, session.begin():
        # Listed before re-queueing revives them: the report says what had given up.
        report.dead_jobs = [job.line() for job in await requeue.dead_jobs(session)]
        if apply:
            report.requeued = await requeue.requeue_owed(session, now=now)
    return report
