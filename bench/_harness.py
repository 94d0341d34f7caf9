"""What the benchmarks share: start and stop `joycart serve` (seeding is in `_seed.py`, load in
`_load.py`).

Everything targets 127.0.0.1. The server is a subprocess on a temporary data dir (embedded
PostgreSQL, rate limits off) whose Razorpay is the simulator in a process of its own
(`_razorpay.py`); `Server.stop()` sends SIGTERM to both and checks that they exited and that the
embedded PostgreSQL is stopped too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def start_plain(
    script: str, database_url: str, path: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a plain yardstick route, `bench/<script> PORT DATABASE_URL`, and return it with its
    URL once it answers HTTP at all (a GET on a POST route is a 405: it is up)."""
    port = free_port()
    here = ROOT / "bench"
    proc = subprocess.Popen(
        [sys.executable, str(here / script), str(port), database_url],
        cwd=here,
        env={**os.environ, **(env or {})},
    )
    url = f"http://{HOST}:{port}{path}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{script} exited early")
        try:
            httpx.get(url, timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"{script} did not answer within 30 s")


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
