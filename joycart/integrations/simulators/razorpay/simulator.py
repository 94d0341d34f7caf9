"""`RazorpaySimulator`: the state, the REST API and the simulated customers, served by uvicorn
on a thread (tests, `joycart serve` in development) or in the running event loop."""

from __future__ import annotations

import socket
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from joycart.integrations.simulators import serving
from joycart.integrations.simulators.razorpay.rest import RestApi
from joycart.integrations.simulators.razorpay.wire import (
    JSON,
    RecordedRequest,
    _Fault,
    _IdempotentRefund,
)


class RazorpaySimulator(RestApi):
    """In-memory Razorpay: orders, payments, refunds, webhooks and fault injection."""

    def __init__(
        self,
        key_id: str = "rzp_test_simulator",
        key_secret: str = "simulator_key_secret",  # noqa: S107 - public test credentials
        webhook_secret: str = "simulator_webhook_secret",  # noqa: S107 - ditto
        webhook_url: str | None = None,
        auto_process_refunds_after: float | None = None,
    ) -> None:
        self.key_id, self.key_secret, self.webhook_secret = key_id, key_secret, webhook_secret
        self.webhook_url = webhook_url
        self.auto_process_refunds_after = auto_process_refunds_after
        self._lock = threading.Lock()
        self._orders: dict[str, JSON] = {}
        self._payments: dict[str, JSON] = {}
        self._refunds: dict[str, JSON] = {}
        self._idempotency: dict[str, _IdempotentRefund] = {}
        self._faults: list[_Fault] = []
        self._released = threading.Event()  # ends "hold" faults (deterministic interleavings)
        self._requests: list[RecordedRequest] = []
        self._timers: list[threading.Timer] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        v1, sim = self._v1, self._control
        self.app = Starlette(
            routes=[
                Route("/v1/orders", v1(self._create_order), methods=["POST"]),
                Route("/v1/orders", v1(self._list_orders), methods=["GET"]),
                Route("/v1/orders/{id}", v1(self._get_order), methods=["GET"]),
                Route("/v1/orders/{id}/payments", v1(self._order_payments), methods=["GET"]),
                Route("/v1/payments/{id}", v1(self._get_payment), methods=["GET"]),
                Route("/v1/payments/{id}/refund", v1(self._create_refund), methods=["POST"]),
                Route("/v1/payments/{id}/refunds", v1(self._payment_refunds), methods=["GET"]),
                Route("/v1/refunds", v1(self._list_refunds), methods=["GET"]),
                Route("/v1/refunds/{id}", v1(self._get_refund), methods=["GET"]),
                Route("/v1/{rest:path}", v1(self._unknown_route)),
                Route(
                    "/_sim/pay", sim(lambda b, _: self._pay_from(b, fail=False)), methods=["POST"]
                ),
                Route(
                    "/_sim/fail", sim(lambda b, _: self._pay_from(b, fail=True)), methods=["POST"]
                ),
                Route("/_sim/refunds/{id}/process", sim(self._refund_from), methods=["POST"]),
                Route("/_sim/refunds/{id}/fail", sim(self._refund_from), methods=["POST"]),
            ]
        )

    # -- serving -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the Razorpay simulator is not being served")
        return self._base_url

    def make_server(
        self, host: str, port: int, *, embedded: bool = True
    ) -> tuple[uvicorn.Server, socket.socket]:
        """The uvicorn server and its bound socket. `embedded`: signals are left to whoever owns
        the process (tests, `joycart serve`); otherwise SIGTERM and Ctrl-C stop it (a process of
        its own, `razorpay_process`)."""
        sock = serving.bind(host, port)
        self._base_url = serving.base_url(sock)
        config = uvicorn.Config(
            self.app, host=host, port=sock.getsockname()[1], log_level="warning",
            lifespan="off", http="h11", ws="none", proxy_headers=False,
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        self._server = serving.EmbeddedServer(config) if embedded else uvicorn.Server(config)
        return self._server, sock

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a daemon thread; return ``base_url`` once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the Razorpay simulator is already running")
        server, sock = self.make_server(host, port)
        self._thread = serving.start_thread(server, sock, "razorpay-sim")
        return self.base_url

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in the running event loop until ``stop()`` or until the task is cancelled."""
        server, sock = self.make_server(host, port)
        await server.serve(sockets=[sock])

    def stop(self) -> None:
        self._cancel_timers()
        serving.stop_thread(self._server, self._thread)
        self._server = self._thread = self._base_url = None
