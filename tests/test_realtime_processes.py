"""Two `joycart serve` processes on one database: a change committed by one reaches a subscriber
on the other, through PostgreSQL NOTIFY, with one LISTEN connection per process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.conftest import JWT_SECRET, KEY_ID, KEY_SECRET, WEBHOOK_SECRET
from tests.helpers import Api, assert_invariants
from tests.realtime import ORDER_UPDATED, cancel, deliver, order_of, place
from tests.ws import GqlSocket, bearer

STARTUP_SECONDS = 90
PAID_WITHIN_SECONDS = 2.0  # the number, from the capture webhook to the subscriber


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _start(data_dir: Path, env: dict[str, str], *, worker: bool) -> Process:
    port = _free_port()
    data_dir.mkdir(parents=True)
    log = data_dir / "serve.log"
    args = [sys.executable, "-m", "joycart.cli", "serve", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [*args, *([] if worker else ["--no-worker"])],
            env={**env, "JOYCART_DATA_DIR": str(data_dir)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(f"http://127.0.0.1:{port}", proc, log)


async def _ready(process: Process) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            assert process.proc.poll() is None, f"serve exited:\n{process.tail()}"
            try:
                if (await client.get(f"{process.url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"serve did not get ready:\n{process.tail()}")


def _stop(process: Process) -> None:
    if process.proc.poll() is None:
        process.proc.send_signal(signal.SIGTERM)
        try:
            process.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.proc.kill()
            process.proc.wait()


@pytest.fixture
async def processes(
    database_url: str, razorpay: RazorpaySimulator, services: Services, tmp_path: Path
) -> AsyncIterator[tuple[Process, Process]]:
    """A (with the worker in-process) and B (`--no-worker`), on the tests' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOYCART_")}
    env.update(
        JOYCART_DATABASE_URL=database_url,
        JOYCART_JWT_SECRET=JWT_SECRET,
        JOYCART_RAZORPAY_KEY_ID=KEY_ID,
        JOYCART_RAZORPAY_KEY_SECRET=KEY_SECRET,
        JOYCART_RAZORPAY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        JOYCART_RAZORPAY_API_URL=razorpay.base_url,
        JOYCART_RATE_LIMITS="off",
    )
    a = _start(tmp_path / "a", env, worker=True)
    b = _start(tmp_path / "b", env, worker=False)
    try:
        await asyncio.gather(_ready(a), _ready(b))
        yield a, b
    finally:
        _stop(a)
        _stop(b)


async def _listeners(services: Services) -> int:
    """LISTEN connections on this database, less the test process's own."""
    async with services.engine.connect() as conn:
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'joycart-listen' AND datname = current_database()"
            )
        )
    return int(count or 0) - (1 if services.realtime.listening else 0)


async def test_a_change_committed_on_one_process_reaches_a_subscriber_on_another(
    processes: tuple[Process, Process], razorpay: RazorpaySimulator, services: Services
) -> None:
    a, b = processes
    webhooks_b = f"{b.url}/webhooks/razorpay"
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=60) as http_a,
        httpx.AsyncClient(base_url=b.url, timeout=60) as http_b,
    ):
        order = await place(Api(http_a))
        async with (
            GqlSocket.connect(a.url, bearer(order.buyer.token)) as buyer,
            GqlSocket.connect(a.url, {"accessToken": order.buyer.token}) as tab,
        ):
            op = await buyer.subscribe(ORDER_UPDATED, {"id": order.id})
            assert order_of(await buyer.data(op))["status"] == "PENDING_PAYMENT"
            other = await tab.subscribe(ORDER_UPDATED, {"id": order.id})
            assert order_of(await tab.data(other))["status"] == "PENDING_PAYMENT"
            # Two sockets on A, one LISTEN connection: per process, not per socket.
            assert await _listeners(services) == 1

            authorized, captured, paid = razorpay.pay(order.rzp_order)
            await deliver(razorpay, [authorized], webhooks_b)
            started = time.monotonic()
            await deliver(razorpay, [captured], webhooks_b)
            seen = await buyer.until(op, lambda d: order_of(d)["status"] == "PAID")
            elapsed = time.monotonic() - started
            assert elapsed < PAID_WITHIN_SECONDS, f"PAID reached A {elapsed:.2f} s after capture"
            assert order_of(seen[-1])["payment"]["status"] == "CAPTURED"
            await deliver(razorpay, [paid], webhooks_b)  # a duplicate of what we know: no harm

            result = await cancel(Api(http_b), order.buyer, order.items[0], 1)
            changed = order_of(
                (
                    await buyer.until(
                        op,
                        lambda d: (
                            [r["status"] for r in order_of(d)["refunds"]] == ["INITIATED"]
                            and order_of(d)["status"] == "PARTIALLY_CANCELLED"
                        ),
                    )
                )[-1]
            )
            assert changed["refunds"][0]["amount"]["amount"] == 10_000
            assert changed["items"][0]["cancelledQuantity"] == 1

            refund_id = result["refund"]["gatewayRefundId"]
            assert refund_id is not None
            await deliver(razorpay, razorpay.process_refund(refund_id), webhooks_b)
            done = await buyer.until(
                op, lambda d: [r["status"] for r in order_of(d)["refunds"]] == ["REFUNDED"]
            )
            assert order_of(done[-1])["status"] == "PARTIALLY_CANCELLED"
            await tab.until(
                other, lambda d: [r["status"] for r in order_of(d)["refunds"]] == ["REFUNDED"]
            )

            # A subscriber on B too: B opens its own (single) LISTEN connection.
            async with GqlSocket.connect(b.url, {"accessToken": order.buyer.token}) as on_b:
                late = await on_b.subscribe(ORDER_UPDATED, {"id": order.id})
                assert order_of(await on_b.data(late))["refunds"][0]["status"] == "REFUNDED"
                assert await _listeners(services) == 2
    await assert_invariants(services.engine)
