"""The durable job queue in PostgreSQL: work owed to Razorpay or Cloudinary survives restarts.

Jobs are claimed with FOR UPDATE SKIP LOCKED and leased, so several workers never run one job at
once; a crashed worker's lease runs out and the job is claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import Job, JobStatus

FIRST_RETRY = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=30)
MAX_ATTEMPTS = 25
LEASE = timedelta(seconds=60)

CREATE_GATEWAY_ORDER = "create_gateway_order"
SUBMIT_REFUND = "submit_refund"
DELETE_IMAGE = "delete_image"
APPLY_WEBHOOK = "apply_webhook"
RECONCILE = "reconcile"  # periodic: asks Razorpay about what its webhooks may have missed


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime | None = None  # the lease this claim wrote: identifies it on release


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    delay: timedelta = FIRST_RETRY,
) -> None:
    """Owe a call; a pending job with the same dedupe key makes this a no-op."""
    stmt = insert(Job).values(
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
        status=JobStatus.PENDING,
        run_at=datetime.now(UTC) + delay,
        attempts=0,
    )
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[Job.dedupe_key], index_where=text("status = 'PENDING'")
        )
    await session.execute(stmt)


async def claim(session: AsyncSession, *, limit: int = 10) -> list[ClaimedJob]:
    now = datetime.now(UTC)
    due = (
        select(Job.id)
        .where(
            Job.status == JobStatus.PENDING,
            Job.run_at <= now,
            (Job.locked_until.is_(None)) | (Job.locked_until < now),
        )
        .order_by(Job.run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(due.scalar_subquery()))
        .values(locked_until=now + LEASE, attempts=Job.attempts + 1)
        .returning(Job.id, Job.kind, Job.payload, Job.attempts)
    )
    return [ClaimedJob(r.id, r.kind, r.payload, r.attempts, now + LEASE) for r in rows]


async def release(session: AsyncSession, claimed: list[ClaimedJob]) -> int:
    """Give back claimed jobs this worker will not run (it is stopping): due again at once.

    Only a lease still exactly as this claim wrote it is released, so a lease that ran out and was
    taken by another worker is never touched; the attempt the claim counted is given back.
    """
    released = 0
    for job in claimed:
        result = await session.execute(
            update(Job)
            .where(
                Job.id == job.id,
                Job.status == JobStatus.PENDING,
                Job.locked_until == job.lease_until,
            )
            .values(locked_until=None, attempts=Job.attempts - 1)
        )
        released += result.rowcount  # type: ignore[attr-defined]
    return released


async def complete(session: AsyncSession, job_id: int) -> None:
    await session.execute(
        update(Job).where(Job.id == job_id).values(status=JobStatus.DONE, locked_until=None)
    )


def backoff(attempts: int) -> timedelta:
    delay: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


async def retry_later(session: AsyncSession, job: ClaimedJob, error: str) -> None:
    dead = job.attempts >= MAX_ATTEMPTS
    await session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(
            status=JobStatus.DEAD if dead else JobStatus.PENDING,
            run_at=func.now() + backoff(job.attempts),
            locked_until=None,
            last_error=error[:2000],
        )
    )


async def settle(session: AsyncSession, dedupe_key: str) -> None:
    """The owed work was done inline: the pending job for it has nothing left to do."""
    await session.execute(
        update(Job)
        .where(Job.dedupe_key == dedupe_key, Job.status == JobStatus.PENDING)
        .values(status=JobStatus.DONE, locked_until=None)
    )
