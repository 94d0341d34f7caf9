"""Gauges read from PostgreSQL at scrape time: the money and work that are stuck, whoever owns it.

In multiprocess mode prometheus-client cannot run custom collectors or `set_function` gauges, and
a gauge set by one process would be stale in the others, so the serving process asks the
database when it is scraped (three cheap queries over partial indexes that hold only the open
rows) and renders the answer in a registry of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# (label, lower bound in seconds, upper bound in seconds or None)
REFUND_AGE_BUCKETS = (("0-5m", 0, 300), ("5m-1h", 300, 3600), ("1h-24h", 3600, 86400))
OLDEST_BUCKET = "24h+"

# A job running under a live lease (a long reconciliation, a slow Razorpay call) is not behind.
_JOBS = text(
    """SELECT kind, status::text AS state, count(*) AS n,
              min(run_at) FILTER (WHERE status = 'PENDING' AND run_at <= now()
                                    AND (locked_until IS NULL OR locked_until < now()))
                  AS oldest_due
       FROM jobs WHERE status <> 'DONE' GROUP BY kind, status"""
)
_REFUNDS = text(
    """SELECT count(*) FILTER (WHERE initiated AND age < interval '5 minutes') AS a,
              count(*) FILTER (WHERE initiated AND age >= interval '5 minutes'
                                              AND age < interval '1 hour') AS b,
              count(*) FILTER (WHERE initiated AND age >= interval '1 hour'
                                              AND age < interval '24 hours') AS c,
              count(*) FILTER (WHERE initiated AND age >= interval '24 hours') AS d,
              max(age) FILTER (WHERE initiated) AS oldest,
              count(*) FILTER (WHERE status = 'FAILED' AND NOT EXISTS (
                  SELECT 1 FROM refunds retry WHERE retry.retry_of_id = r.id)) AS failed
       FROM (SELECT id, status, status = 'INITIATED' AS initiated, now() - created_at AS age
             FROM refunds WHERE status <> 'REFUNDED') r"""
)
_WEBHOOKS = text(
    """SELECT count(*) AS n, max(now() - received_at) AS oldest
       FROM webhook_events WHERE processed_at IS NULL"""
)


@dataclass
class Snapshot:
    """What the database said at one scrape."""

    up: bool = False
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_due_job_age: float = 0.0
    refunds_initiated: dict[str, int] = field(default_factory=dict)
    oldest_initiated_refund_age: float = 0.0
    refunds_failed: int = 0
    webhooks_unapplied: int = 0
    oldest_unapplied_webhook_age: float = 0.0


def _age(now: datetime, then: datetime | None) -> float:
    return max((now - then).total_seconds(), 0.0) if then is not None else 0.0


def _seconds(age: timedelta | None) -> float:
    return max(age.total_seconds(), 0.0) if age is not None else 0.0


async def read_snapshot(engine: AsyncEngine, *, timeout_ms: int = 3000) -> Snapshot:
    """One short read-only transaction; a database that does not answer gives `up=False`."""
    snap = Snapshot()
    async with engine.connect() as conn:
        await conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        now: datetime = (await conn.execute(text("SELECT now()"))).scalar_one()
        oldest_due: datetime | None = None
        for row in await conn.execute(_JOBS):
            snap.jobs[(row.kind, row.state)] = row.n
            if row.oldest_due is not None and (oldest_due is None or row.oldest_due < oldest_due):
                oldest_due = row.oldest_due
        snap.oldest_due_job_age = _age(now, oldest_due)
        refunds = (await conn.execute(_REFUNDS)).one()
        labels = [label for label, _, _ in REFUND_AGE_BUCKETS] + [OLDEST_BUCKET]
        snap.refunds_initiated = dict(zip(labels, refunds[:4], strict=True))
        snap.oldest_initiated_refund_age = _seconds(refunds.oldest)
        snap.refunds_failed = refunds.failed
        hooks = (await conn.execute(_WEBHOOKS)).one()
        snap.webhooks_unapplied = hooks.n
        snap.oldest_unapplied_webhook_age = _seconds(hooks.oldest)
        await conn.rollback()
    snap.up = True
    return snap


class _SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families())

    def _families(self) -> Iterator[GaugeMetricFamily]:
        s = self.snap
        yield GaugeMetricFamily(
            "joycart_database_up", "1 if the database answered this scrape.", value=int(s.up)
        )
        if not s.up:
            return
        jobs = GaugeMetricFamily(
            "joycart_jobs", "Jobs not done, by kind and state.", labels=["kind", "state"]
        )
        for (kind, state), n in sorted(s.jobs.items()):
            jobs.add_metric([kind, state], n)
        yield jobs
        dead = sum(n for (_, state), n in s.jobs.items() if state == "DEAD")
        yield GaugeMetricFamily(
            "joycart_jobs_dead", "Jobs that stopped retrying; each needs a person.", value=dead
        )
        yield GaugeMetricFamily(
            "joycart_job_oldest_due_age_seconds",
            "How long the oldest pending job has been due (0 when none is due).",
            value=s.oldest_due_job_age,
        )
        initiated = GaugeMetricFamily(
            "joycart_refunds_initiated",
            "Refunds asked for and not yet settled by Razorpay, by age.",
            labels=["age"],
        )
        for label, n in s.refunds_initiated.items():
            initiated.add_metric([label], n)
        yield initiated
        yield GaugeMetricFamily(
            "joycart_refund_initiated_oldest_age_seconds",
            "Age of the oldest refund still INITIATED (0 when none is).",
            value=s.oldest_initiated_refund_age,
        )
        yield GaugeMetricFamily(
            "joycart_refunds_failed",
            "Refunds Razorpay reported FAILED that nobody has asked again.",
            value=s.refunds_failed,
        )
        yield GaugeMetricFamily(
            "joycart_webhooks_unapplied",
            "Verified webhooks recorded but not applied yet.",
            value=s.webhooks_unapplied,
        )
        yield GaugeMetricFamily(
            "joycart_webhook_oldest_unapplied_age_seconds",
            "Age of the oldest recorded webhook not applied yet (0 when none).",
            value=s.oldest_unapplied_webhook_age,
        )


def render(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snap))
    return generate_latest(registry)
