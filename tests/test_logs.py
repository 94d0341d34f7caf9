"""Logs: JSON lines carrying the bound identifiers in production, readable lines in development,
and one unit of work's identifiers never leaking into the next."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from joycart.observability import logs


@pytest.fixture
def configured() -> Iterator[None]:
    """`logs.configure` rewires the root logger: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_production_lines_are_json_with_the_bound_ids(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(json=True)
    with logs.fresh_context(request_id="r-1"):
        logs.bind(order_id="o-9", user_id=None)
        logging.getLogger("joycart.test").info("order %s: %s", "o-9", "ORDER_PLACED")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("joycart.test").exception("it failed")
    first, second = (orjson.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["event"] == "order o-9: ORDER_PLACED"
    assert (first["request_id"], first["order_id"], first["level"]) == ("r-1", "o-9", "info")
    assert first["logger"] == "joycart.test"
    assert "user_id" not in first
    assert "ValueError: boom" in second["exception"]


def test_development_lines_are_for_people(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(json=False)
    with logs.fresh_context(request_id="r-2"):
        logging.getLogger("joycart.test").warning("slow gateway")
    line = capsys.readouterr().err.strip()
    assert "slow gateway" in line
    assert "request_id=r-2" in line
    assert not line.startswith("{")


def test_a_unit_of_work_forgets_what_the_last_one_bound(configured: None) -> None:
    logs.new_unit(job_id=1)
    logs.bind(order_id="from-job-1")
    logs.new_unit(job_id=2, **logs.ids_in({"refund_id": "rf-2", "event_row_id": 7}))
    assert logs.current("order_id") is None
    assert (logs.current("job_id"), logs.current("refund_id")) == ("2", "rf-2")
    assert logs.current("webhook_row_id") == "7"
