"""The process's own Prometheus metrics: what happened here, counted as it happens.

`joycart serve` runs prometheus-client in multiprocess mode (PROMETHEUS_MULTIPROC_DIR is set by
the parent before any process starts), so counters and histograms from every API process and the
background worker add up at scrape time. What the database knows (jobs, refunds, unapplied
webhooks) is read at scrape time instead: see `observability.database`.

Label values are bounded: routes are route templates, GraphQL operation names are capped, event
types outside Razorpay's known set and unknown outcomes collapse to "other".
"""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600)

HTTP_DURATION = Histogram(
    "joycart_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status class.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
GRAPHQL_DURATION = Histogram(
    "joycart_graphql_operation_duration_seconds",
    "Time to parse, validate and execute a GraphQL operation, by operation name and type.",
    ["operation", "type"],
    buckets=_LATENCY_BUCKETS,
)
WEBHOOKS = Counter(
    "joycart_webhooks_received",
    "Razorpay webhook deliveries by event type and outcome "
    "(applied, duplicate, ignored, rejected, queued).",
    ["event", "outcome"],
)
WEBHOOK_LAG = Histogram(
    "joycart_webhook_lag_seconds",
    "From the event's created_at at Razorpay to its effect applied here.",
    ["event"],
    buckets=_LAG_BUCKETS,
)
CHECKOUTS = Counter(
    "joycart_checkouts",
    "Checkout outcomes: placed, replayed (same key), gateway_unavailable, or the refusal's code.",
    ["outcome"],
)
RECONCILIATION = Counter(
    "joycart_reconciliation_mismatches",
    "What reconciliation found at Razorpay that we had not recorded, and what it applied.",
    ["kind", "action"],
)
JOBS_RUN = Counter(
    "joycart_jobs_run",
    "Jobs the background worker ran, by kind and result (done, retry).",
    ["kind", "result"],
)
IN_FLIGHT = Gauge(
    "joycart_http_requests_in_flight",
    "HTTP requests being answered right now, over all API processes.",
    multiprocess_mode="livesum",
)
SERVED = Gauge(
    "joycart_process_requests_served",
    "HTTP requests answered by each live API process (one series per pid).",
    multiprocess_mode="liveall",
)
WORKER_RUNNING = Gauge(
    "joycart_worker_running",
    "1 for each live process running the background worker (one series per pid).",
    multiprocess_mode="liveall",
)

WEBHOOK_EVENTS = frozenset(
    {
        "payment.authorized",
        "payment.captured",
        "payment.failed",
        "order.paid",
        "refund.created",
        "refund.processed",
        "refund.failed",
        "refund.speed_changed",
    }
)
WEBHOOK_OUTCOMES = frozenset({"applied", "duplicate", "ignored", "rejected", "queued"})

_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OPERATION_NAMES = 200
_operations_seen: set[str] = set()
_operations_lock = threading.Lock()


def operation_label(name: str | None) -> str:
    """A client-chosen operation name, kept only while the set of names stays small."""
    if not name:
        return "anonymous"
    if not _OPERATION_NAME.match(name):
        return "other"
    with _operations_lock:
        if name in _operations_seen:
            return name
        if len(_operations_seen) >= MAX_OPERATION_NAMES:
            return "other"
        _operations_seen.add(name)
        return name


def event_label(event_type: object) -> str:
    return event_type if isinstance(event_type, str) and event_type in WEBHOOK_EVENTS else "other"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def webhook_received(event_type: object, outcome: str) -> None:
    WEBHOOKS.labels(
        event_label(event_type), outcome if outcome in WEBHOOK_OUTCOMES else "other"
    ).inc()


def webhook_applied(
    event_type: object, created_at: object, outcome: str, now: datetime | None = None
) -> None:
    """Count an event just applied (inline or by the worker) and, if it changed anything, the lag
    from its creation at Razorpay (unix seconds) to now."""
    if outcome.startswith(("ignored", "unknown")):
        webhook_received(event_type, "ignored")
        return
    if outcome.startswith(("duplicate", "already")):
        webhook_received(event_type, "duplicate")
        return
    webhook_received(event_type, "applied")
    if isinstance(created_at, bool) or not isinstance(created_at, int | float):
        return  # synthetic events from reconciliation carry no created_at
    moment = (now or datetime.now(UTC)).timestamp()
    WEBHOOK_LAG.labels(event_label(event_type)).observe(max(moment - float(created_at), 0.0))


def checkout_outcome(outcome: str) -> None:
    CHECKOUTS.labels(outcome).inc()


def reconciliation(kind: str, *, found: int, applied: int = 0) -> None:
    if found:
        RECONCILIATION.labels(kind, "found").inc(found)
    if applied:
        RECONCILIATION.labels(kind, "applied").inc(applied)


class _Report(Protocol):
    unrecorded_captures: list[str]
    stale_refunds: list[str]
    mismatches: list[str]
    applied: list[str]


def reconciliation_report(report: _Report) -> None:
    """One reconciliation run: what it found of each kind, and how much it applied."""
    reconciliation("unrecorded_capture", found=len(report.unrecorded_captures))
    reconciliation("stale_refund", found=len(report.stale_refunds))
    reconciliation("amount_mismatch", found=len(report.mismatches))
    reconciliation("any", found=0, applied=len(report.applied))


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def forget_this_process() -> None:
    """Drop this process's live gauges (requests served, worker running) as it exits cleanly."""
    path = multiprocess_dir()
    if path and os.path.isdir(path):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
