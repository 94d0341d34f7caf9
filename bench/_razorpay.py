"""The simulated Razorpay as its own process for every benchmark (not inside `joycart serve`),
so that the server's CPU figure is JoyCart's alone, as in production."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

KEY_ID = "rzp_test_bench"
MODULE = "joycart.integrations.simulators.razorpay_process"


class RazorpayProcess:
    """`python -m joycart.integrations.simulators.razorpay_process` with fresh credentials."""

    def __init__(self, webhook_url: str, log_path: Path) -> None:
        self.webhook_url = webhook_url
        self.log_path = log_path
        self.key_id = KEY_ID
        self.key_secret = secrets.token_urlsafe(24)
        self.webhook_secret = secrets.token_urlsafe(24)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def env(self) -> dict[str, str]:
        """What `joycart serve` needs to use it (and start no simulator of its own)."""
        return {
            "JOYCART_RAZORPAY_KEY_ID": self.key_id,
            "JOYCART_RAZORPAY_KEY_SECRET": self.key_secret,
            "JOYCART_RAZORPAY_WEBHOOK_SECRET": self.webhook_secret,
            "JOYCART_RAZORPAY_API_URL": self.url,
        }

    def start(self) -> str:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", MODULE,
                    "--key-id", self.key_id,
                    "--key-secret", self.key_secret,
                    "--webhook-secret", self.webhook_secret,
                    "--webhook-url", self.webhook_url,
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )  # fmt: skip
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the simulated Razorpay did not start; see {self.log_path}")
        deadline = time.monotonic() + 30
        while True:  # the socket listens already; wait until uvicorn answers on it
            try:
                httpx.get(f"{self.url}/v1/orders", timeout=2)  # 401 without credentials
                return self.url
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the simulated Razorpay does not answer; see {self.log_path}"
                    ) from None
                time.sleep(0.02)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> str:
        """SIGTERM; checks it exited."""
        if self.proc is None:
            return "not started"
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError("the simulated Razorpay ignored SIGTERM for 15 s") from None
        if proc.stdout is not None:
            proc.stdout.close()
        if code not in (0, -signal.SIGTERM):
            raise RuntimeError(f"the simulated Razorpay exited with {code}; see {self.log_path}")
        return "exited"
