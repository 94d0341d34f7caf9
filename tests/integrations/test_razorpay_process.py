"""The simulated Razorpay in a process of its own (what the benchmarks run): the real SDK creates
an order on it, and SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import razorpay


def test_the_simulator_process_serves_the_sdk_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "joycart.integrations.simulators.razorpay_process",
            "--key-id", "rzp_test_process", "--key-secret", "secret-process",
            "--webhook-secret", "webhook-process", "--refunds-after", "-1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = razorpay.Client(auth=("rzp_test_process", "secret-process"), base_url=url)
        order = client.order.create({"amount": 50_000, "currency": "INR", "receipt": "r1"})
        assert order["id"].startswith("order_")
        assert client.order.fetch(order["id"])["amount"] == 50_000
        wrong = razorpay.Client(auth=("rzp_test_process", "not-the-secret"), base_url=url)
        with pytest.raises(razorpay.errors.BadRequestError, match="Authentication failed"):
            wrong.order.fetch(order["id"])
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal so the exit status says why it stopped.
        assert proc.wait(15) == -signal.SIGTERM
        if proc.stdout is not None:
            proc.stdout.close()
