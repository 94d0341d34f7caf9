"""The durable job queue in PostgreSQL: work owed to Razorpay or Cloudinary survives restarts.

Jobs are claimed with FOR UPDATE SKIP LOCKED, one at a time, and leased: a claim writes a fresh
lease token and an expiry, and the worker renews the lease from a background task while the job
runs (`renew`), so a job slower than one lease is never claimed twice. Everything that ends a
claim (`complete`, `retry_later`, `dead`, `release`, `renew`) acts only where the lease token is
still the caller's and reports whether it did: a worker whose lease ran out and was taken over
changes nothing, and a DONE job (settled inline, or finished by the new holder) stays DONE.

Attempts: a claim counts one attempt. A claim that found another process making the same call
(LockBusy) gives it back (`retry_later(..., counts=False)`); a job re-claimed after its lease ran
out counts that once (the claim that found it expired counts, the lost one does not report).
A job is declared DEAD only after MAX_ATTEMPTS *and* at least DEAD_AFTER of trying since its
first attempt, so a day-long Razorpay outage leaves it owed, not dropped. Every function takes
`now` (the injectable `Services.clock`), never the database's clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.models import Job, JobStatus

FIRST_RETRY = timedelta(seconds=5)
BUSY_RETRY = timedelta(seconds=2)  # another process is making the same call: look again soon
MAX_BACKOFF = timedelta(minutes=30)
MAX_ATTEMPTS = 25
DEAD_AFTER = timedelta(hours=24)
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
    lease_until: datetime | None = None  # the expiry this claim wrote
    lease_token: uuid.UUID | None = None  # identifies this claim in every later write
    first_attempt_at: datetime | None = None


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


# Built once: enqueueing is on the hot paths (every checkout owes its Razorpay order).
_ENQUEUE = insert(Job).returning(Job.id)
_ENQUEUE_DEDUPED = (
    insert(Job)
    .on_conflict_do_nothing(index_elements=[Job.dedupe_key], index_where=text("status = 'PENDING'"))
    .returning(Job.id)
)


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    delay: timedelta = FIRST_RETRY,
    now: datetime | None = None,
) -> bool:
    """Owe a call; a pending job with the same dedupe key makes this a no-op (returns False)."""
    values = {
        "kind": kind,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "status": JobStatus.PENDING,
        "run_at": _now(now) + delay,
        "attempts": 0,
    }
    conn = await session.connection()
    stmt = _ENQUEUE if dedupe_key is None else _ENQUEUE_DEDUPED
    return (await conn.execute(stmt, values)).first() is not None


async def claim(
    session: AsyncSession,
    *,
    limit: int = 1,
    now: datetime | None = None,
    lease: timedelta = LEASE,
) -> list[ClaimedJob]:
    """Lease due jobs whose lease is free or ran out; each claim counts one attempt."""
    now = _now(now)
    due = (
        select(Job.id)
        .where(
            Job.status == JobStatus.PENDING,
            Job.run_at <= now,
            or_(Job.locked_until.is_(None), Job.locked_until < now),
        )
        .order_by(Job.run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.scalars(due)).all())
    claimed = []
    for job_id in ids:
        token = uuid.uuid4()
        row = (
            await session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    locked_until=now + lease,
                    lease_token=token,
                    attempts=Job.attempts + 1,
                    first_attempt_at=func.coalesce(Job.first_attempt_at, now),
                    last_attempt_at=now,
                )
                .returning(Job.kind, Job.payload, Job.attempts, Job.first_attempt_at)
            )
        ).one()
        claimed.append(
            ClaimedJob(
                job_id,
                row.kind,
                row.payload,
                row.attempts,
                now + lease,
                token,
                row.first_attempt_at,
            )
        )
    return claimed


def _mine(job: ClaimedJob) -> Any:
    return (Job.id == job.id) & (Job.lease_token == job.lease_token)


async def renew(
    session: AsyncSession, job: ClaimedJob, *, now: datetime | None = None, lease: timedelta = LEASE
) -> bool:
    """Extend this claim's lease while its job runs; False once the lease is someone else's."""
    result = await session.execute(
        update(Job)
        .where(_mine(job), Job.status == JobStatus.PENDING)
        .values(locked_until=_now(now) + lease)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(session: AsyncSession, claimed: list[ClaimedJob]) -> int:
    """Give back claimed jobs this worker will not run (it is stopping): due again at once.

    Only a lease this claim still holds is released, so a lease that ran out and was taken by
    another worker is never touched; the attempt the claim counted is given back.
    """
    released = 0
    for job in claimed:
        result = await session.execute(
            update(Job)
            .where(_mine(job), Job.status == JobStatus.PENDING)
            .values(locked_until=None, lease_token=None, attempts=Job.attempts - 1)
        )
        released += result.rowcount  # type: ignore[attr-defined]
    return released


async def complete(session: AsyncSession, job: ClaimedJob) -> bool:
    """The job's work is done: DONE, if this claim still holds its lease."""
    result = await session.execute(
        update(Job)
        .where(_mine(job), Job.status == JobStatus.PENDING)
        .values(status=JobStatus.DONE, locked_until=None, lease_token=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def backoff(attempts: int) -> timedelta:
    # The exponent is capped: a job retried for a whole day passes 40 attempts, and 5 s * 2**40
    # overflows timedelta.
    delay: timedelta = FIRST_RETRY * (2 ** min(max(attempts - 1, 0), 20))
    return min(delay, MAX_BACKOFF)


def exhausted(job: ClaimedJob, now: datetime) -> bool:
    """Out of attempts and tried for at least DEAD_AFTER: only then is a job given up on."""
    started = job.first_attempt_at or now
    return job.attempts >= MAX_ATTEMPTS and now - started >= DEAD_AFTER


async def retry_later(
    session: AsyncSession,
    job: ClaimedJob,
    error: str,
    *,
    now: datetime | None = None,
    counts: bool = True,
) -> bool:
    """Run it again after a backoff (DEAD once exhausted); `counts=False` gives the attempt back."""
    now = _now(now)
    if not counts:
        values: dict[str, Any] = {
            "run_at": now + BUSY_RETRY,
            "attempts": Job.attempts - 1,
            "locked_until": None,
            "lease_token": None,
            "last_error": error[:2000],
        }
    else:
        values = {
            "status": JobStatus.DEAD if exhausted(job, now) else JobStatus.PENDING,
            "run_at": now + backoff(job.attempts),
            "locked_until": None,
            "lease_token": None,
            "last_error": error[:2000],
        }
    result = await session.execute(
        update(Job).where(_mine(job), Job.status == JobStatus.PENDING).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def dead(session: AsyncSession, job: ClaimedJob, error: str) -> bool:
    """Give up on a job that can never succeed (a permanent error), if this claim holds it."""
    result = await session.execute(
        update(Job)
        .where(_mine(job), Job.status == JobStatus.PENDING)
        .values(status=JobStatus.DEAD, locked_until=None, lease_token=None, last_error=error[:2000])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


_SETTLE = (
    update(Job)
    .where(Job.dedupe_key == bindparam("key"), Job.status == JobStatus.PENDING)
    .values(status=JobStatus.DONE, locked_until=None, lease_token=None)
)


async def settle(session: AsyncSession, dedupe_key: str) -> None:
    """The owed work was done inline: the pending job for it has nothing left to do.

    Clearing the lease token means a worker that holds a lease on it writes nothing afterwards.
    """
    conn = await session.connection()
    await conn.execute(_SETTLE, {"key": dedupe_key})


async def retry_now(
    session: AsyncSession, *, job_id: int | None = None, now: datetime | None = None
) -> int:
    """Operator retry: make one job (or, without an id, every DEAD job) due now, attempts reset."""
    other = Job.__table__.alias("other")
    # A DEAD job whose work is owed again by a newer pending job stays as it is (one owed call).
    newer = exists().where(
        other.c.dedupe_key == Job.dedupe_key, other.c.status == "PENDING", other.c.id != Job.id
    )
    stmt = update(Job).where(Job.status != JobStatus.DONE, ~newer)
    if job_id is None:
        stmt = stmt.where(Job.status == JobStatus.DEAD)
    else:
        stmt = stmt.where(Job.id == job_id)
    result = await session.execute(
        stmt.values(
            status=JobStatus.PENDING,
            run_at=_now(now),
            attempts=0,
            first_attempt_at=None,
            locked_until=None,
            lease_token=None,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
