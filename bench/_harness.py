"""What the benchmarks share: start and stop `joycart serve`, seed over SQL, generate load.

Everything targets 127.0.0.1. The server is a subprocess on a temporary data dir (embedded
PostgreSQL, rate limits off) whose Razorpay is the simulator in a process of its own
(`_razorpay.py`); `Server.stop()` sends SIGTERM to both and checks that they exited and that the
embedded PostgreSQL is stopped too.

Load: `wrk` when it is on PATH (a Lua script written into a temp dir sets the POST body and
headers), otherwise a small asyncio + httpx generator; `LoadResult.tool` says which ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _razorpay import RazorpayProcess

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def joycart_command() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "joycart"
    if venv.exists():
        return [str(venv)]
    return [sys.executable, "-m", "joycart.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def line(label: str, value: str) -> None:
    """One result line: plain text, aligned, flushed at once."""
    print(f"{label:<44} {value}", flush=True)


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Server:
    """`joycart serve` as a subprocess on its own data dir and port."""

    def __init__(
        self, data_dir: Path, *, port: int | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.log_path = data_dir.parent / f"{data_dir.name}-serve-{self.port}.log"
        self._postmaster_pid: int | None = None
        self.razorpay = RazorpayProcess(
            f"{self.url}/webhooks/razorpay", data_dir.parent / f"{data_dir.name}-razorpay.log"
        )

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            JOYCART_DATA_DIR=str(self.data_dir),
            JOYCART_RATE_LIMITS="off",
            JOYCART_ENV="development",
        )
        for name in ("JOYCART_DATABASE_URL", "JOYCART_RAZORPAY_KEY_ID", "JOYCART_CLOUDINARY_URL"):
            env.pop(name, None)
        if not self.razorpay.url:
            self.razorpay.start()
        env.update(self.razorpay.env())
        log = self.log_path.open("ab")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                *joycart_command(),
                "serve",
                "--host",
                HOST,
                "--port",
                str(self.port),
                *self.extra_args,
            ],
            cwd=self.data_dir.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_graphql(self, timeout: float = 90.0) -> float:
        """Seconds from `start()` until POST /graphql answers `{ __typename }`."""
        assert self.proc is not None
        deadline = self.started_at + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"joycart serve exited early; see {self.log_path}")
                try:
                    r = client.post(f"{self.url}/graphql", json={"query": "{ __typename }"})
                    if r.status_code == 200 and r.json().get("data") == {"__typename": "Query"}:
                        return time.perf_counter() - self.started_at
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        raise RuntimeError(f"no answer on /graphql within {timeout} s; see {self.log_path}")

    def wait_ready(self, timeout: float = 90.0) -> None:
        self.wait_graphql(timeout)
        with httpx.Client(timeout=5.0) as client:
            r = client.get(f"{self.url}/readyz")
            if r.status_code != 200:
                raise RuntimeError(f"/readyz answered {r.status_code}")
        self._postmaster_pid = self._read_postmaster_pid()

    def _read_postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    @property
    def socket_dir(self) -> str:
        return str(self.pgdata)

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@/joycart?host={self.socket_dir}"

    def secrets(self) -> dict[str, str]:
        """The data dir's development secrets (the JWT secret), with the Razorpay credentials
        actually in use: the simulator process's."""
        raw: dict[str, str] = json.loads((self.data_dir / "dev-secrets.json").read_text())
        return raw | {
            "razorpay_key_secret": self.razorpay.key_secret,
            "razorpay_webhook_secret": self.razorpay.webhook_secret,
        }

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM; checks the server exited, the embedded PostgreSQL is down and the simulated
        Razorpay exited."""
        try:
            status = self._stop_server(timeout)
        finally:
            razorpay = self.razorpay.stop()
        return f"{status}; simulated Razorpay {razorpay}"

    def _stop_server(self, timeout: float) -> str:
        if self.proc is None:
            return "not started"
        pid = self._postmaster_pid or self._read_postmaster_pid()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"joycart serve ignored SIGTERM for {timeout} s") from None
        finally:
            self.proc = None
        how = "by SIGTERM" if code == -signal.SIGTERM else f"with code {code}"
        if code not in (0, -signal.SIGTERM):
            raise RuntimeError(f"joycart serve exited {how}; see {self.log_path}")
        if (self.pgdata / "postmaster.pid").exists():
            raise RuntimeError("embedded PostgreSQL still has a postmaster.pid after shutdown")
        if pid is not None and _alive(pid):
            raise RuntimeError(f"embedded PostgreSQL (pid {pid}) still runs after shutdown")
        return f"exited {how}; embedded PostgreSQL stopped"

    def __enter__(self) -> Server:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None or self.razorpay.proc is not None:
            try:
                status = self.stop()
            except RuntimeError as err:
                line("server stop", f"PROBLEM: {err}")
                raise
            line("server stop", status)

    def kill(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.razorpay.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _alive(pid: int, wait: float = 5.0) -> bool:
    """Whether `pid` still runs (a zombie waiting for its reaper counts as gone)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            running = stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            try:
                os.kill(pid, 0)
                running = True
            except ProcessLookupError:
                running = False
            except PermissionError:
                running = True
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


def gql(
    url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """One GraphQL request; raises on an HTTP or GraphQL error."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=30,
    )
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


# ---------------------------------------------------------------------------------------------
# Load for a fixed duration: the same POST again and again.


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        text = f"{self.rps:,.0f} req/s ({self.requests} in {self.seconds:.1f} s"
        if self.latency_p50_ms is not None and self.latency_p99_ms is not None:
            text += f", p50 {self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms"
        text += f", non-2xx {self.non_2xx}, errors {self.errors}) [{self.tool}]"
        return text


def load_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    duration: float = 10.0,
    connections: int = 16,
) -> LoadResult:
    """Requests per second of one POST repeated for `duration` seconds.

    `wrk` when it is on PATH, unless `JOYCART_BENCH_TOOL=httpx` asks for the fallback.
    """
    if shutil.which("wrk") and os.environ.get("JOYCART_BENCH_TOOL", "auto") != "httpx":
        return _wrk_post(url, body, headers, duration=duration, connections=connections)
    return asyncio.run(_httpx_post(url, body, headers, duration=duration, connections=connections))


_LUA = """local f = assert(io.open({body_path!r}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
{headers}
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    assert m, value
    return float(m.group(1)) * _UNITS[m.group(2)]


def _wrk_post(
    url: str, body: bytes, headers: dict[str, str], *, duration: float, connections: int
) -> LoadResult:
    with temp_dir("joycart-wrk-") as tmp:
        body_path = tmp / "body.json"
        body_path.write_bytes(body)
        all_headers = {"Content-Type": "application/json", **headers}
        header_lines = "\n".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in all_headers.items()
        )
        script = tmp / "post.lua"
        script.write_text(_LUA.format(body_path=str(body_path), headers=header_lines))
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        ).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    assert m, out
    seconds = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    return LoadResult(
        tool="wrk",
        requests=int(m.group(1)),
        seconds=seconds,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
        latency_p50_ms=_ms(p50.group(1)) if p50 else None,
        latency_p99_ms=_ms(p99.group(1)) if p99 else None,
    )


async def _httpx_post(
    url: str, body: bytes, headers: dict[str, str], *, duration: float, connections: int
) -> LoadResult:
    all_headers = {"Content-Type": "application/json", **headers}
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers=all_headers)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if not r.is_success:
                    counts["non_2xx"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float | None:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3 if latencies else None
        )

    return LoadResult(
        tool="asyncio+httpx",
        requests=len(latencies),
        seconds=seconds,
        non_2xx=counts["non_2xx"],
        errors=counts["errors"],
        latency_p50_ms=pct(0.50),
        latency_p99_ms=pct(0.99),
    )


# ---------------------------------------------------------------------------------------------
# A fixed batch of distinct requests at a bounded concurrency (checkouts, webhooks).


@dataclass
class BatchResult:
    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    bodies: list[Any] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def run_batch(
    requests: Sequence[Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]],
    *,
    concurrency: int = 32,
) -> BatchResult:
    """Send every request once, at most `concurrency` at a time; keeps each JSON answer."""
    result = BatchResult(seconds=0.0, bodies=[None] * len(requests))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    r = await requests[i](client)
                except httpx.HTTPError as err:
                    result.transport_errors += 1
                    result.bodies[i] = repr(err)
                    continue
                result.statuses[r.status_code] = result.statuses.get(r.status_code, 0) + 1
                try:
                    result.bodies[i] = r.json()
                except ValueError:
                    result.bodies[i] = r.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


def asyncpg_dsn(server: Server) -> dict[str, str]:
    """Keyword arguments for `asyncpg.connect` to the server's embedded database."""
    return {"user": "postgres", "host": server.socket_dir, "database": "joycart"}


# ---------------------------------------------------------------------------------------------
# Seeding straight into the server's database (not measured): accounts, products, carts.

# Seeded accounts never log in: their tokens are issued here with the server's JWT secret.
_NO_LOGIN_HASH = "seeded-by-bench-no-login"


@dataclass(frozen=True)
class Seeded:
    id: uuid.UUID
    token: str


async def seed_users(
    conn: asyncpg.Connection, n: int, *, role: str, jwt_secret: str, prefix: str
) -> list[Seeded]:
    from joycart.security import issue_access_token

    ids = [uuid.uuid4() for _ in range(n)]
    await conn.executemany(
        "INSERT INTO users (id, email, name, role, password_hash, created_at) "
        "VALUES ($1, $2, $3, $4, $5, now())",
        [
            (uid, f"{prefix}-{uid.hex[:12]}@example.com", f"{prefix} {i}", role, _NO_LOGIN_HASH)
            for i, uid in enumerate(ids)
        ],
    )
    return [Seeded(uid, issue_access_token(jwt_secret, uid)) for uid in ids]


async def seed_products(
    conn: asyncpg.Connection,
    seller_ids: Sequence[uuid.UUID],
    per_seller: int,
    *,
    stock: int,
    price: int = 49_900,
) -> list[uuid.UUID]:
    """Live products with their opening stock in the ledger; created one second apart."""
    rows = []
    for s, seller in enumerate(seller_ids):
        for i in range(per_seller):
            n = s * per_seller + i
            rows.append(
                (
                    uuid.uuid4(),
                    seller,
                    f"Product {n:04d}",
                    f"Hand-made item number {n}, packed with care and shipped across India.",
                    price + 100 * (n % 50),
                    stock,
                    n,
                )
            )
    await conn.executemany(
        "INSERT INTO products (id, seller_id, name, description, price, currency, stock, "
        "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'INR', $6, "
        "now() - make_interval(secs => $7), now())",
        rows,
    )
    await conn.executemany(
        "INSERT INTO stock_ledger (product_id, delta, reason, actor_id, created_at) "
        "VALUES ($1, $2, 'INITIAL', $3, now())",
        [(r[0], stock, r[1]) for r in rows if stock],
    )
    return [r[0] for r in rows]
