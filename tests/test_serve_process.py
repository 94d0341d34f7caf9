"""`joycart serve` as a process: embedded PostgreSQL started, stopped on SIGTERM and Ctrl-C, and a
server left behind by a crashed process reused rather than started twice."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _postmaster_pid(serve_dir: Path) -> int | None:
    pid_file = serve_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


class Serve:
    def __init__(self, serve_dir: Path) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOYCART_")}
        env["JOYCART_DATA_DIR"] = str(serve_dir)
        self.log = serve_dir.parent / f"serve-{self.port}.log"
        with self.log.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "joycart.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                f"serve exited during start-up:\n{self.log.read_text(errors='replace')[-3000:]}"
            )
            try:
                body = {"query": "{ __typename }"}
                r = httpx.post(f"http://127.0.0.1:{self.port}/graphql", json=body, timeout=2)
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("serve did not answer within a minute")

    def gql(self, query: str, token: str | None = None) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = httpx.post(
            f"http://127.0.0.1:{self.port}/graphql",
            json={"query": query},
            headers=headers,
            timeout=10,
        )
        data: dict[str, object] = r.json()["data"]
        return data

    def stop(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


@pytest.fixture
def serve_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root, the embedded server runs as another user, and every
    # pytest session that starts on this machine makes /tmp/pytest-of-root owner-only again,
    # which locks that user out of its own data directory half-way through a test.
    base = Path(tempfile.mkdtemp(prefix="joycart-serve-"))
    yield base / "data"
    pid = _postmaster_pid(base / "data")
    if pid is not None:  # never leave a server behind, whatever the test did
        os.kill(pid, signal.SIGTERM)
    shutil.rmtree(base, ignore_errors=True)


def test_serve_stops_its_database_on_sigterm_and_on_ctrl_c(serve_dir: Path) -> None:
    first = Serve(serve_dir)
    assert _postmaster_pid(serve_dir) is not None
    first.stop(signal.SIGTERM)
    assert _postmaster_pid(serve_dir) is None

    second = Serve(serve_dir)
    second.stop(signal.SIGINT)
    assert _postmaster_pid(serve_dir) is None


REGISTER = """mutation { register(input: {email: "Kept@Example.com", password: "a long passphrase",
  name: "Kept"}) { errors { code } } }"""
LOGIN = """mutation { login(input: {email: "kept@example.com", password: "a long passphrase"}) {
  accessToken errors { code } } }"""


def test_a_database_left_by_a_crashed_serve_is_reused_not_duplicated(serve_dir: Path) -> None:
    crashed = Serve(serve_dir)
    assert crashed.gql(REGISTER) == {"register": {"errors": []}}
    orphan = _postmaster_pid(serve_dir)
    crashed.stop(signal.SIGKILL)
    assert _postmaster_pid(serve_dir) == orphan  # the database outlived its parent

    recovered = Serve(serve_dir)
    assert _postmaster_pid(serve_dir) == orphan
    login = recovered.gql(LOGIN)["login"]
    assert isinstance(login, dict)
    assert login["errors"] == []
    me = recovered.gql("{ me { email } }", token=login["accessToken"])
    assert me == {"me": {"email": "Kept@Example.com"}}
    recovered.stop(signal.SIGTERM)
    assert _postmaster_pid(serve_dir) is None
