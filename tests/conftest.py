"""Test harness: a real PostgreSQL (embedded, or JOYCART_TEST_DATABASE_URL), the app served by
uvicorn on 127.0.0.1, and the fake Razorpay and Cloudinary servers the real SDKs talk to.

Each test starts from empty tables (TRUNCATE after every test) and fresh fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from joycart import migrate
from joycart.app import create_app
from joycart.bootstrap import Services, build_services
from joycart.config import Settings
from joycart.embedded_db import EmbeddedPostgres
from joycart.integrations.razorpay import RazorpayGateway
from joycart.integrations.simulators.cloudinary import CloudinarySimulator
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import Base
from tests.helpers import Api

KEY_ID = "rzp_test_joycarttests"
KEY_SECRET = "test-key-secret-0123456789"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"
JWT_SECRET = "test-jwt-secret-" + "x" * 40


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("joycart money schedules")
    group.addoption(
        "--schedules",
        type=int,
        default=200,
        help="how many random fault schedules tests/money runs (default 200; 5000 for a long run)",
    )
    group.addoption(
        "--schedule-seed",
        type=int,
        default=None,
        help="first seed of the fault schedules (replay one failing schedule with --schedules 1)",
    )


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="joycart-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
async def server_url_base(data_dir: Path) -> AsyncIterator[str]:
    """A PostgreSQL server URL (no database chosen yet)."""
    given = os.environ.get("JOYCART_TEST_DATABASE_URL")
    if given:
        yield given
        return
    pg = EmbeddedPostgres(data_dir)
    await asyncio.to_thread(pg.start)
    try:
        yield pg.url("postgres")
    finally:
        await asyncio.to_thread(pg.stop)


async def _admin(url: str) -> asyncpg.Connection:
    u = make_url(url)
    return await asyncpg.connect(
        user=u.username or "postgres",
        password=u.password,
        host=u.query.get("host") or u.host,
        port=u.port,
        database=u.database or "postgres",
    )


@pytest.fixture(scope="session")
async def database_url(server_url_base: str) -> AsyncIterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    name = f"joycart_test_{uuid.uuid4().hex[:10]}"
    admin = await _admin(server_url_base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = make_url(server_url_base).set(drivername="postgresql+asyncpg", database=name)
    yield url.render_as_string(hide_password=False)
    admin = await _admin(server_url_base)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
def razorpay() -> Iterator[RazorpaySimulator]:
    sim = RazorpaySimulator(key_id=KEY_ID, key_secret=KEY_SECRET, webhook_secret=WEBHOOK_SECRET)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def cloudinary_sim() -> Iterator[CloudinarySimulator]:
    sim = CloudinarySimulator()
    sim.start()
    yield sim
    sim.stop()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "development",
        "data_dir": data_dir,
        "jwt_secret": JWT_SECRET,
        "razorpay_key_id": KEY_ID,
        "razorpay_key_secret": KEY_SECRET,
        "razorpay_webhook_secret": WEBHOOK_SECRET,
        "rate_limits": "off",
        "gateway_timeout_seconds": 2.0,
        "db_pool_size": 20,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
async def services(
    database_url: str, data_dir: Path, razorpay: RazorpaySimulator
) -> AsyncIterator[Services]:
    settings = make_settings(data_dir)
    built = build_services(settings, database_url=database_url, razorpay_api_url=razorpay.base_url)
    await migrate.upgrade(built.engine)
    yield built
    await built.close()


@pytest.fixture(scope="session")
async def server(services: Services, razorpay: RazorpaySimulator) -> AsyncIterator[str]:
    """The app on a real port in this event loop: webhooks arrive as real HTTP requests."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only then (else +40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(services), log_level="warning", lifespan="off", access_log=False
    )
    srv = uvicorn.Server(config)
    srv.capture_signals = _no_signals  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    while not srv.started:  # noqa: ASYNC110 - uvicorn exposes no event for "started"
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    razorpay.webhook_url = f"{url}/webhooks/razorpay"
    yield url
    srv.should_exit = True
    await task
    sock.close()


# A test that needs a tool outside Python (node and the npm packages in tests/node/) skips with a
# reason starting with this marker when the tool is missing; the terminal summary repeats every
# such reason, so a run without the tool says so at its end, never silently.
MISSING_TOOL = "missing tool:"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else ""
        if MISSING_TOOL in reason:
            text_ = reason[reason.index(MISSING_TOOL) :]
            reasons[text_] = reasons.get(text_, 0) + 1
    if reasons:
        terminalreporter.section("tests that did not run: a tool is missing", yellow=True)
        for reason, count in reasons.items():
            terminalreporter.write_line(f"{count} test(s): {reason}")


def _no_signals() -> contextlib.nullcontext[None]:
    return contextlib.nullcontext()


@pytest.fixture(autouse=True)
async def clean_state(
    services: Services, razorpay: RazorpaySimulator, cloudinary_sim: CloudinarySimulator
) -> AsyncIterator[None]:
    razorpay.reset()
    cloudinary_sim.reset()
    yield
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    for attempt in range(1, 11):
        try:
            async with services.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            break
        except DBAPIError as exc:
            # The processes of a module-scoped cluster (tests/multiprocess) outlive each test and
            # may be writing: TRUNCATE's exclusive table locks can then deadlock with their row
            # locks, and PostgreSQL aborts one side (40P01). When it is ours, truncate again.
            if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == 10:
                raise


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as client:
        yield client


@pytest.fixture
def api(http: httpx.AsyncClient) -> Api:
    return Api(http)


@pytest.fixture
def short_timeout(services: Services) -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """`with short_timeout():` makes Razorpay calls time out after 0.5 s, for the one call a test
    wants to see time out; every other call keeps the normal timeout (no flakes under load)."""
    gateway = services.gateway
    assert isinstance(gateway, RazorpayGateway)
    before = gateway._timeout

    @contextlib.contextmanager
    def shortened() -> Iterator[None]:
        gateway._timeout = 0.5
        try:
            yield
        finally:
            gateway._timeout = before

    yield shortened
    gateway._timeout = before
