"""The background worker: owed gateway calls, image deletions, expiry of unpaid orders.

Runs inside `joycart serve` or alone as `joycart worker`; any number of workers coordinate
through PostgreSQL (jobs claimed with FOR UPDATE SKIP LOCKED under renewed, token-checked
leases; see resolvers/jobs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from joycart.bootstrap import Services
from joycart.errors import GatewayUnavailable
from joycart.integrations.images import ImageStore, ImageStoreError, LocalImageStore
from joycart.observability import logs, metrics
from joycart.resolvers import jobs, limits, orders, payment_sessions, refunds
from joycart.resolvers.inbox import apply_recorded
from joycart.resolvers.locks import LockBusy
from joycart.resolvers.reconcile import reconcile

log = logging.getLogger("joycart.worker")

POLL_SECONDS = 1.0
RECONCILE_EVERY = timedelta(minutes=10)
# Webhooks usually arrive within seconds; only sessions older than this are asked about.
RECONCILE_SESSION_AGE = timedelta(minutes=5)


@dataclass
class RunStats:
    jobs_done: int = 0
    jobs_retried: int = 0
    orders_expired: int = 0


def _store_for(services: Services, kind: str) -> ImageStore:
    """The store the image was written to, even if the configuration changed since."""
    if kind == services.images.kind:
        return services.images
    if kind == "LOCAL":
        return LocalImageStore(Path(services.settings.data_dir) / "images", url_prefix="/images/")
    raise ImageStoreError(f"no {kind} image store is configured to remove the file from")


async def _run_job(services: Services, job: jobs.ClaimedJob) -> None:
    if job.kind == jobs.CREATE_GATEWAY_ORDER:
        pid = uuid.UUID(job.payload["payment_id"])
        await payment_sessions.open_gateway_session(
            services.sessions, services.gateway, pid, wait=False
        )
    elif job.kind == jobs.SUBMIT_REFUND:
        rid = uuid.UUID(job.payload["refund_id"])
        await refunds.submit_refund(services.sessions, services.gateway, rid, wait=False)
    elif job.kind == jobs.DELETE_IMAGE:
        await _store_for(services, job.payload["store"]).delete(job.payload["key"])
    elif job.kind == jobs.RECONCILE:

        async def renew() -> None:  # between pages: a long run keeps its lease
            async with services.sessions() as session, session.begin():
                await jobs.renew(session, job, now=services.clock())

        report = await reconcile(
            services.sessions,
            services.gateway,
            refund_age=timedelta(minutes=services.settings.refund_reconcile_age_minutes),
            session_age=RECONCILE_SESSION_AGE,
            apply=True,
            now=services.clock(),
            renew=renew,
        )
        for line in report.requeued:
            log.warning("owed again (its job was DEAD or missing): %s", line)
        for line in report.applied:
            log.warning("reconciled from Razorpay: %s", line)
        for line in report.errors:  # asked again at the next run
            log.warning("reconciliation could not check: %s", line)
        metrics.reconciliation_report(report)
    elif job.kind == jobs.APPLY_WEBHOOK:
        await apply_recorded(services.sessions, int(job.payload["event_row_id"]))
    else:
        raise ValueError(f"unknown job kind {job.kind}")


async def _renew_while_running(services: Services, job: jobs.ClaimedJob, lease: timedelta) -> None:
    """Keep the lease alive every third of it; a lost lease is logged, its writes will not land."""
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        try:
            async with services.sessions() as session, session.begin():
                held = await jobs.renew(session, job, now=services.clock(), lease=lease)
        except Exception:  # the database blinked: try again at the next third of the lease
            log.warning("job %s: could not renew its lease", job.id, exc_info=True)
            continue
        if not held:
            log.warning("job %s: lease lost to another worker or settled; not renewing", job.id)
            return


async def _run_claimed(
    services: Services, job: jobs.ClaimedJob, lease: timedelta, renew: bool
) -> str:
    """Run one claimed job under its renewed lease; returns "done", "retry" or "busy"."""
    renewal = asyncio.create_task(_renew_while_running(services, job, lease)) if renew else None
    outcome, error = "done", ""
    try:
        await _run_job(services, job)
    except LockBusy as exc:  # another process is making this very call: not an attempt
        outcome, error = "busy", str(exc)
    except (GatewayUnavailable, ImageStoreError) as exc:
        outcome, error = "retry", str(exc)
    except Exception as exc:  # a bug must not stop the worker; the job keeps its error
        log.exception("job %s (%s) failed", job.id, job.kind)
        outcome, error = "retry", f"{type(exc).__name__}: {exc}"
    finally:
        if renewal is not None:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
    now = services.clock()
    async with services.sessions() as session, session.begin():
        if outcome == "done":
            held = await jobs.complete(session, job)
            if held and job.kind == jobs.RECONCILE:
                await schedule_reconciliation(session, now=now)
        else:
            held = await jobs.retry_later(session, job, error, now=now, counts=outcome == "retry")
    if not held:  # settled by the work itself, or the lease ran out and another worker has it
        log.info("job %s: already settled or taken over; its state is left as it is", job.id)
    return outcome


async def run_due_jobs(
    services: Services,
    *,
    limit: int = 20,
    stop: asyncio.Event | None = None,
    lease: timedelta = jobs.LEASE,
    renew: bool = True,
) -> RunStats:
    """Claim and run due jobs one at a time (up to `limit`), each under its own renewed lease."""
    stats = RunStats()
    for _ in range(limit):
        if stop is not None and stop.is_set():  # draining: claim nothing more
            break
        async with services.sessions() as session, session.begin():
            claimed = await jobs.claim(session, limit=1, now=services.clock(), lease=lease)
        if not claimed:
            break
        job = claimed[0]
        logs.new_unit(job_id=job.id, job_kind=job.kind, **logs.ids_in(job.payload))
        outcome = await _run_claimed(services, job, lease, renew)
        if outcome == "done":
            stats.jobs_done += 1
        else:
            stats.jobs_retried += 1
        metrics.JOBS_RUN.labels(job.kind, "done" if outcome == "done" else "retry").inc()
    logs.new_unit()
    return stats


async def schedule_reconciliation(session: AsyncSession, *, now: datetime | None = None) -> None:
    """Keep one pending reconciliation job; several workers share it (dedupe on its key)."""
    await jobs.enqueue(
        session, jobs.RECONCILE, {}, dedupe_key=jobs.RECONCILE, delay=RECONCILE_EVERY, now=now
    )


async def run_once(services: Services, stop: asyncio.Event | None = None) -> RunStats:
    """One pass: expire what is due, drop ended rate-limit windows, then run the due jobs."""
    async with services.sessions() as session, session.begin():
        expired = await orders.expire_due_orders(session)
        await limits.prune_windows(session)
    logs.new_unit()  # expiry binds the order ids it wrote about
    stats = await run_due_jobs(services, stop=stop)
    stats.orders_expired = expired
    return stats


async def run_forever(services: Services, stop: asyncio.Event) -> None:
    log.info("worker started")
    metrics.WORKER_RUNNING.set(1)
    async with services.sessions() as session, session.begin():
        await schedule_reconciliation(session)
    while not stop.is_set():
        try:
            stats = await run_once(services, stop)
            busy = stats.jobs_done + stats.jobs_retried + stats.orders_expired
        except Exception:
            log.exception("worker pass failed; retrying")
            busy = 0
        if busy:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)
    metrics.WORKER_RUNNING.set(0)
    log.info("worker stopped")
