"""What the simulated Razorpay keeps (one lock guards it all), and how tests read it and inject
faults."""

from __future__ import annotations

import copy
import threading

import uvicorn
from starlette.applications import Starlette

from joycart.integrations.simulators.razorpay.wire import (
    FAULTS,
    JSON,
    RecordedRequest,
    _Fault,
    _IdempotentRefund,
)


class SimulatorState:
    """The simulator's state (set by `RazorpaySimulator.__init__`) and its test-facing readers."""

    key_id: str
    key_secret: str
    webhook_secret: str
    webhook_url: str | None
    auto_process_refunds_after: float | None
    _lock: threading.Lock
    _orders: dict[str, JSON]
    _payments: dict[str, JSON]
    _refunds: dict[str, JSON]
    _idempotency: dict[str, _IdempotentRefund]
    _faults: list[_Fault]
    _released: threading.Event
    _requests: list[RecordedRequest]
    _timers: list[threading.Timer]
    _server: uvicorn.Server | None
    _thread: threading.Thread | None
    _base_url: str | None
    app: Starlette

    # -- recording, faults and snapshots -------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.method == method.upper() and r.path.startswith(path_prefix)
        ]

    @property
    def orders(self) -> dict[str, JSON]:
        with self._lock:
            return copy.deepcopy(self._orders)

    @property
    def payments(self) -> dict[str, JSON]:
        with self._lock:
            return copy.deepcopy(self._payments)

    @property
    def refunds(self) -> dict[str, JSON]:
        with self._lock:
            return copy.deepcopy(self._refunds)

    def inject(
        self, method: str, path_prefix: str, fault: str, times: int = 1, delay: float = 0.0
    ) -> None:
        """Make the next ``times`` matching /v1 requests misbehave (see ``FAULTS``)."""
        if fault not in FAULTS or times < 1:
            raise ValueError(f"unknown fault {fault!r} or times < 1")
        with self._lock:
            self._faults.append(_Fault(method.upper(), path_prefix, fault, times, delay))

    def release_held(self) -> None:
        """Let requests held by a "hold" fault go on (until the next ``reset``)."""
        self._released.set()

    def faults_pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._released.clear()

    def reset(self) -> None:
        """Forget all state, faults and recorded requests (between tests)."""
        self._cancel_timers()
        with self._lock:
            for table in (self._orders, self._payments, self._refunds, self._idempotency):
                table.clear()
            self._faults.clear()
            self._released.clear()
            self._requests.clear()

    def _cancel_timers(self) -> None:
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None
