"""Nothing owed is dropped: re-queue owed gateway calls that have no live job, list DEAD jobs.

Used by reconciliation (worker and `joycart reconcile`) and by `joycart jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import Job, JobStatus, Payment, PaymentStatus, Refund, RefundStatus
from joycart.resolvers import jobs

PAGE = 500


@dataclass(frozen=True)
class JobRow:
    id: int
    kind: str
    status: str
    payload: dict[str, Any]
    attempts: int
    run_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None

    def line(self) -> str:
        ids = " ".join(f"{k}={v}" for k, v in sorted(self.payload.items()))
        first = f"{self.first_attempt_at:%Y-%m-%d %H:%M}" if self.first_attempt_at else "-"
        last = f"{self.last_attempt_at:%Y-%m-%d %H:%M}" if self.last_attempt_at else "-"
        error = (self.last_error or "").splitlines()[0][:160] if self.last_error else "-"
        return (
            f"job {self.id} {self.status} {self.kind} {ids} attempts={self.attempts} "
            f"first={first} last={last} run_at={self.run_at:%Y-%m-%d %H:%M:%S} error: {error}"
        )


def _row(job: Job) -> JobRow:
    return JobRow(
        job.id,
        job.kind,
        job.status.value,
        job.payload,
        job.attempts,
        job.run_at,
        job.first_attempt_at,
        job.last_attempt_at,
        job.last_error,
    )


def _live(key: Any) -> Any:
    return exists().where(Job.dedupe_key == key, Job.status == JobStatus.PENDING)


async def _owe(
    session: AsyncSession, kind: str, payload: dict[str, Any], key: str, now: datetime
) -> bool:
    """Revive the newest DEAD job for this work (one row per owed call, its last error kept),
    or queue a new one if it has none."""
    newest_dead = (
        select(Job.id)
        .where(Job.dedupe_key == key, Job.status == JobStatus.DEAD)
        .order_by(Job.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    revived = await session.execute(
        update(Job)
        .where(Job.id == newest_dead)
        .values(
            status=JobStatus.PENDING,
            run_at=now,
            attempts=0,
            first_attempt_at=None,
            locked_until=None,
            lease_token=None,
        )
    )
    if revived.rowcount:  # type: ignore[attr-defined]
        return True
    return await jobs.enqueue(session, kind, payload, dedupe_key=key, now=now, delay=timedelta(0))


async def requeue_owed(session: AsyncSession, *, now: datetime) -> list[str]:
    """Owe again every refund call and Razorpay order that has no pending job (DEAD or missing).

    Money owed is never given up on: a DEAD job for it is made due again (attempts reset), so
    during a long outage it is tried for another day, at the backoff's 30-minute pace.
    """
    requeued: list[str] = []
    refunds = await session.scalars(
        select(Refund.id)
        .where(
            Refund.status == RefundStatus.INITIATED,
            Refund.gateway_refund_id.is_(None),
            ~_live("refund:" + Refund.id.cast(Job.dedupe_key.type)),
        )
        .order_by(Refund.created_at, Refund.id)
    )
    for refund_id in refunds.all():
        key = f"refund:{refund_id}"
        if await _owe(session, jobs.SUBMIT_REFUND, {"refund_id": str(refund_id)}, key, now):
            requeued.append(f"{jobs.SUBMIT_REFUND} refund_id={refund_id}")
    payments = await session.scalars(
        select(Payment.id)
        .where(
            and_(Payment.status == PaymentStatus.CREATED, Payment.razorpay_order_id.is_(None)),
            ~_live("gateway-order:" + Payment.id.cast(Job.dedupe_key.type)),
        )
        .order_by(Payment.created_at, Payment.id)
    )
    for payment_id in payments.all():
        key = f"gateway-order:{payment_id}"
        payload = {"payment_id": str(payment_id)}
        if await _owe(session, jobs.CREATE_GATEWAY_ORDER, payload, key, now):
            requeued.append(f"{jobs.CREATE_GATEWAY_ORDER} payment_id={payment_id}")
    return requeued


async def list_jobs(
    session: AsyncSession, *, state: str | None = None, limit: int = PAGE
) -> list[JobRow]:
    """Jobs newest first (optionally one state), for operators."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Job.status == JobStatus(state.upper()))
    return [_row(job) for job in (await session.scalars(query)).all()]


async def dead_jobs(session: AsyncSession) -> list[JobRow]:
    """Every DEAD job: each is work that stopped retrying and needs a person."""
    query = select(Job).where(Job.status == JobStatus.DEAD).order_by(Job.id)
    return [_row(job) for job in (await session.scalars(query)).all()]


async def get_job(session: AsyncSession, job_id: int) -> JobRow | None:
    job = await session.get(Job, job_id)
    return _row(job) if job is not None else None
