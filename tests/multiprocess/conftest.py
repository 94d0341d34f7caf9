"""Fixtures that start real JoyCart processes against the test session's PostgreSQL, directly or
through a real PgBouncer in transaction mode, and a summary of which variants ran and why not.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.conftest import JWT_SECRET, KEY_ID, KEY_SECRET, MISSING_TOOL, WEBHOOK_SECRET
from tests.multiprocess.harness import (
    HttpServe,
    JoyCartProcess,
    PgBouncer,
    clean_environment,
    pgbouncer_binary,
    stop_all,
)
from tests.multiprocess.session_state import session_state_in_code

VARIANTS = ("direct", "pgbouncer")
NO_PGBOUNCER = (
    f"{MISSING_TOOL} the pgbouncer binary is not installed, so nothing ran through PgBouncer "
    "(Debian: apt-get install pgbouncer; .ci/run installs it when apt works)"
)
SESSION_STATE = (
    "the code still keeps session-level state that transaction pooling loses (issue 8 replaces "
    "resolvers/locks.py's session advisory locks)"
)
# What happened to each variant, for the terminal summary: never a silent skip.
_variants: dict[str, list[str]] = {}


def _note(variant: str, outcome: str) -> None:
    _variants.setdefault(variant, []).append(outcome)


# How a test's node id says which variant it is.
_TAGS = {"direct": ("[direct",), "pgbouncer": ("[pgbouncer", "through_pgbouncer")}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for variant, tags in _TAGS.items():
        tagged = any(tag in report.nodeid for tag in tags)
        if tagged and (report.when == "call" or report.skipped):
            reason = ""
            if report.skipped and isinstance(report.longrepr, tuple):
                reason = f" ({report.longrepr[2]})"
            _note(variant, f"{report.nodeid.split('::')[-1]}: {report.outcome}{reason}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _variants:
        return
    terminalreporter.section("multi-process variants (direct PostgreSQL, through PgBouncer)")
    for variant in VARIANTS:
        outcomes = _variants.get(variant)
        if outcomes is None:
            terminalreporter.write_line(f"{variant}: not collected in this run")
            continue
        for outcome in outcomes:
            terminalreporter.write_line(f"{variant}: {outcome}")


def process_env(razorpay: RazorpaySimulator, data_dir: Path) -> dict[str, str]:
    """What every JoyCart process of these tests is given: the fake Razorpay and test keys."""
    return clean_environment(
        JOYCART_DATA_DIR=str(data_dir),
        JOYCART_JWT_SECRET=JWT_SECRET,
        JOYCART_RAZORPAY_KEY_ID=KEY_ID,
        JOYCART_RAZORPAY_KEY_SECRET=KEY_SECRET,
        JOYCART_RAZORPAY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        JOYCART_RAZORPAY_API_URL=razorpay.base_url,
        JOYCART_RATE_LIMITS="off",
        JOYCART_LOG_FORMAT="json",
        JOYCART_DB_POOL_SIZE="10",
    )


@pytest.fixture(scope="session")
def pgbouncer(database_url: str) -> Iterator[PgBouncer | None]:
    """PgBouncer 1.18+ in transaction mode in front of the session's database, if installed."""
    binary = pgbouncer_binary()
    if binary is None:
        yield None
        return
    bouncer = PgBouncer(binary, database_url)
    yield bouncer
    bouncer.stop()


@dataclass
class Cluster:
    variant: str
    api: list[HttpServe]
    workers: list[JoyCartProcess]

    @property
    def everyone(self) -> list[JoyCartProcess]:
        return [*self.api, *self.workers]


@pytest.fixture(scope="module", params=VARIANTS)
def cluster(
    request: pytest.FixtureRequest,
    database_url: str,
    razorpay: RazorpaySimulator,
    services: object,  # migrated before any process starts
) -> Iterator[Cluster]:
    """Two `joycart serve` processes (one with its in-process worker, one `--no-worker`) and two
    `joycart worker` processes, all on one PostgreSQL server."""
    variant: str = request.param
    url = database_url
    extra: dict[str, str] = {}
    if variant == "pgbouncer":
        bouncer: PgBouncer | None = request.getfixturevalue("pgbouncer")
        if bouncer is None:
            pytest.skip(NO_PGBOUNCER)
        kept = session_state_in_code()
        if kept:
            pytest.skip(f"{SESSION_STATE}: {', '.join(kept)}")
        url = bouncer.url
        extra["JOYCART_DATABASE_POOLER"] = "pgbouncer"
        extra["JOYCART_LISTEN_DATABASE_URL"] = database_url  # LISTEN goes to PostgreSQL itself
    work = Path(tempfile.mkdtemp(prefix=f"joycart-cluster-{variant}-"))
    env = process_env(razorpay, work) | {"JOYCART_DATABASE_URL": url, **extra}
    api = [
        HttpServe("api-a", [], env, work),
        HttpServe("api-b", ["--no-worker"], env, work),
    ]
    workers = [JoyCartProcess(f"worker-{n}", ["worker"], env, work) for n in (1, 2)]
    started = Cluster(variant, api, workers)
    try:
        for server in api:
            server.wait_http(server.url)
        for process in [api[0], *workers]:
            process.wait_log("worker started")
        yield started
    finally:
        stop_all(started.everyone)
        shutil.rmtree(work, ignore_errors=True)
