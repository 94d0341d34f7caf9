"""A fake Razorpay REST API on 127.0.0.1 plus a webhook sender that signs like Razorpay.

The real ``razorpay`` SDK talks to it unchanged::

    sim = RazorpaySimulator(webhook_url="http://127.0.0.1:8000/webhooks/razorpay")
    client = razorpay.Client(auth=(sim.key_id, sim.key_secret), base_url=sim.start())
    order = client.order.create({"amount": 50000, "currency": "INR", "receipt": "o_1"}, timeout=5)
    for delivery in sim.pay(order["id"]):  # payment.authorized, payment.captured, order.paid
        sim.deliver(delivery)

Tests drive the simulated checkout through Python methods (``pay``, ``fail_payment``,
``process_refund``, ``fail_refund``) and inject faults (``inject``) to reproduce ambiguous gateway
failures: 5xx, HTML from a proxy, timeouts after the effect and dropped connections. The
development server uses the unauthenticated ``/_sim/...`` control routes instead. State lives in
memory behind one lock because the app is served on its own thread while tests read it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

__all__ = ["RazorpaySimulator", "RecordedRequest", "WebhookDelivery", "sign_webhook"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Handler = Callable[[Request, Any], JSON]
ACCOUNT_ID = "acc_SIMULATOR00001"
FAULTS = frozenset(
    {"500", "html502", "slow", "drop_after_acting", "drop_before_acting", "400", "409", "429"}
)
# "409": the same idempotency key is in flight elsewhere (not acted on here); "429": rate limited.
# Both come as BAD_REQUEST_ERROR bodies, as Razorpay sends them (the SDK cannot tell them from 400).
_STATUS_FAULTS = {
    "409": "A request with the same idempotency key is in progress.",
    "429": "Too many requests. Please try after some time.",
}
_ALNUM = string.ascii_letters + string.digits
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{10,}")
_SERVER_ERROR = "The server encountered an error. The incident has been reported to admins."


def _new_id(prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(14))


def _now() -> int:
    return int(time.time())


def sign_webhook(body: bytes, secret: str) -> str:
    """Return Razorpay's ``X-Razorpay-Signature``: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookDelivery:
    """One signed webhook POST, ready to send (possibly several times, like Razorpay retries)."""

    body: bytes
    event_id: str
    event_type: str
    secret: str = field(default="", repr=False)

    def headers(self, secret: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "Razorpay-Webhook/v1",
            "X-Razorpay-Event-Id": self.event_id,
            "Request-Id": self.event_id,
            "X-Razorpay-Signature": sign_webhook(
                self.body, self.secret if secret is None else secret
            ),
        }

    def json(self) -> JSON:
        parsed: JSON = json.loads(self.body)
        return parsed


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class _Fault:
    method: str
    path_prefix: str
    kind: str
    remaining: int
    delay: float


@dataclass
class _IdempotentRefund:
    fingerprint: str
    refund_id: str
    done: bool = False


class ApiError(Exception):
    """An error answered in Razorpay's JSON shape; the SDK maps ``code`` to its exception."""

    def __init__(
        self,
        status: int,
        description: str,
        field: str | None = None,
        code: str = "BAD_REQUEST_ERROR",
    ) -> None:
        super().__init__(description)
        self.status, self.description, self.field, self.code = status, description, field, code

    def response(self) -> JSONResponse:
        invalid = self.status == 400 and self.code == "BAD_REQUEST_ERROR"
        error: JSON = {
            "code": self.code,
            "description": self.description,
            "source": "business" if invalid else "NA",
            "step": "payment_initiation" if invalid else "NA",
            "reason": "input_validation_failed" if invalid else "NA",
            "metadata": {},
            "field": self.field,
        }
        return JSONResponse({"error": error}, status_code=self.status)


class _DropConnection(Response):
    """Closes the client's TCP connection without any HTTP response (uvicorn-specific)."""

    def __init__(self, server: uvicorn.Server | None) -> None:
        super().__init__()
        self._server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connections = self._server.server_state.connections if self._server else set()
        for connection in list(connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and getattr(connection, "client", None) == scope["client"]:
                transport.close()
                await asyncio.sleep(0.01)  # let uvicorn see the disconnect before we return
                return
        # Not served by our uvicorn: promise a body that never comes; uvicorn then closes.
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
        )
        await send({"type": "http.response.body", "body": b"", "more_body": True})


class _EmbeddedServer(uvicorn.Server):
    """Leaves signal handling to whoever owns the process (the tests or the dev server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _object(body: Any, allowed: set[str]) -> JSON:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body should be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"{', '.join(unknown)} is/are not required and should not be sent.")
    return body


def _amount(value: Any) -> int:
    if value is None:
        raise ApiError(400, "The amount field is required.", "amount")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "The amount must be an integer.", "amount")
    if value < 100:
        raise ApiError(400, "The amount must be at least INR 1.00", "amount")
    return value


def _notes(value: Any) -> dict[str, Any] | list[Any]:
    if value is None or value == []:
        return []
    if not isinstance(value, dict) or len(value) > 15:
        raise ApiError(400, "The notes should be an object with at most 15 keys.", "notes")
    if any(len(str(v)) > 256 for v in value.values()):
        raise ApiError(400, "The notes value may not be greater than 256 characters.", "notes")
    return dict(value)


def _receipt(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 40):
        raise ApiError(400, "The receipt may not be greater than 40 characters.", "receipt")
    return value


def _collection(items: list[JSON], query: Mapping[str, str]) -> JSON:
    try:
        count, skip = int(query.get("count", "10")), int(query.get("skip", "0"))
    except ValueError:
        raise ApiError(400, "The count and skip must be integers.", "count") from None
    if not 1 <= count <= 100 or skip < 0:
        raise ApiError(400, "The count must be between 1 and 100.", "count")
    page = items[skip : skip + count]
    return {"entity": "collection", "count": len(page), "items": page}


def _found(table: dict[str, JSON], entity_id: str) -> JSON:
    if entity_id not in table:
        raise ApiError(404, "The id provided does not exist")
    return table[entity_id]


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class RazorpaySimulator:
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

    def _make_server(self, host: str, port: int) -> tuple[uvicorn.Server, socket.socket]:
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only then (else +40 ms per request).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_host, bound_port = sock.getsockname()[:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        config = uvicorn.Config(
            self.app, host=host, port=bound_port, log_level="warning", lifespan="off",
            http="h11", ws="none", proxy_headers=False, timeout_graceful_shutdown=2,
        )  # fmt: skip
        self._server = _EmbeddedServer(config)
        return self._server, sock

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a daemon thread; return ``base_url`` once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the Razorpay simulator is already running")
        server, sock = self._make_server(host, port)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="razorpay-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Razorpay simulator did not start")
            time.sleep(0.005)
        return self.base_url

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in the running event loop until ``stop()`` or until the task is cancelled."""
        server, sock = self._make_server(host, port)
        await server.serve(sockets=[sock])

    def stop(self) -> None:
        self._cancel_timers()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = self._base_url = None

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

    def faults_pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget all state, faults and recorded requests (between tests)."""
        self._cancel_timers()
        with self._lock:
            for table in (self._orders, self._payments, self._refunds, self._idempotency):
                table.clear()
            self._faults.clear()
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

    # -- HTTP plumbing ------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        token = base64.b64encode(f"{self.key_id}:{self.key_secret}".encode()).decode()
        expected = f"Basic {token}"
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), expected.encode())

    def _v1(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = _parse_body(await request.body())
            recorded = RecordedRequest(
                request.method, request.url.path, dict(request.query_params),
                dict(request.headers), body,
            )  # fmt: skip
            with self._lock:
                self._requests.append(recorded)
            if not self._authorized(request):
                return ApiError(401, "Authentication failed").response()
            fault = self._take_fault(request.method, request.url.path)
            kind = fault.kind if fault else None
            if kind == "500":
                return ApiError(500, _SERVER_ERROR, code="SERVER_ERROR").response()
            if kind == "html502":
                return HTMLResponse("<html><body>502 Bad Gateway</body></html>", status_code=502)
            if kind == "400":
                return ApiError(400, "Simulated refusal").response()
            if kind in _STATUS_FAULTS:
                return ApiError(int(kind), _STATUS_FAULTS[kind]).response()
            if kind == "drop_before_acting":
                return _DropConnection(self._server)
            try:
                with self._lock:
                    response: Response = JSONResponse(handler(request, body))
            except ApiError as error:
                response = error.response()
            try:
                if fault is not None and kind == "slow":
                    await asyncio.sleep(fault.delay)
            finally:
                self._release_idempotency_key(request)
            return _DropConnection(self._server) if kind == "drop_after_acting" else response

        return endpoint

    def _control(
        self, action: Callable[[JSON, str], tuple[str, JSON, list[WebhookDelivery]]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = _parse_body(await request.body())
            try:
                name, entity, deliveries = action(
                    body if isinstance(body, dict) else {}, request.url.path
                )
            except (KeyError, ValueError) as exc:
                return ApiError(404 if isinstance(exc, KeyError) else 400, str(exc)).response()
            results = await run_in_threadpool(self._deliver_all, deliveries)
            return JSONResponse({name: entity, "deliveries": results})

        return endpoint

    def _pay_from(self, body: JSON, *, fail: bool) -> tuple[str, JSON, list[WebhookDelivery]]:
        order_id = body.get("order_id") or self._newest_order_id(str(body.get("receipt")))
        amount = body.get("amount")
        deliveries = self.fail_payment(order_id) if fail else self.pay(order_id, amount)
        return "payment", deliveries[-1].json()["payload"]["payment"]["entity"], deliveries

    def _refund_from(self, _: JSON, path: str) -> tuple[str, JSON, list[WebhookDelivery]]:
        refund_id = path.split("/")[-2]
        fail = path.endswith("/fail")
        deliveries = self.fail_refund(refund_id) if fail else self.process_refund(refund_id)
        return "refund", deliveries[0].json()["payload"]["refund"]["entity"], deliveries

    def _deliver_all(self, deliveries: list[WebhookDelivery]) -> list[JSON]:
        results: list[JSON] = []
        for delivery in deliveries:
            result: JSON = {"event": delivery.event_type, "status": None}
            try:
                result["status"] = self.deliver(delivery) if self.webhook_url else None
            except httpx.HTTPError as exc:
                result["error"] = str(exc) or type(exc).__name__
            results.append(result)
        return results

    # -- REST handlers (called with the lock held) ----------------------------------------------

    def _create_order(self, request: Request, body: Any) -> JSON:
        allowed = {"amount", "currency", "receipt", "notes", "partial_payment", "payment_capture"}
        data = _object(body, allowed)
        amount = _amount(data.get("amount"))
        if data.get("currency") != "INR":
            raise ApiError(400, "The currency must be INR.", "currency")
        order: JSON = {
            "id": _new_id("order_"), "entity": "order", "amount": amount, "amount_paid": 0,
            "amount_due": amount, "currency": "INR", "receipt": _receipt(data.get("receipt")),
            "offer_id": None, "status": "created", "attempts": 0,
            "notes": _notes(data.get("notes")), "created_at": _now(),
        }  # fmt: skip
        self._orders[order["id"]] = order
        return order

    def _list_orders(self, request: Request, body: Any) -> JSON:
        receipt = request.query_params.get("receipt")
        orders = [o for o in self._orders.values() if receipt is None or o["receipt"] == receipt]
        return _collection(orders[::-1], request.query_params)

    def _get_order(self, request: Request, body: Any) -> JSON:
        return _found(self._orders, request.path_params["id"])

    def _order_payments(self, request: Request, body: Any) -> JSON:
        order_id = _found(self._orders, request.path_params["id"])["id"]
        payments = [p for p in self._payments.values() if p["order_id"] == order_id]
        return _collection(payments[::-1], request.query_params)

    def _get_payment(self, request: Request, body: Any) -> JSON:
        return _found(self._payments, request.path_params["id"])

    def _payment_refunds(self, request: Request, body: Any) -> JSON:
        payment_id = _found(self._payments, request.path_params["id"])["id"]
        refunds = [r for r in self._refunds.values() if r["payment_id"] == payment_id]
        return _collection(refunds[::-1], request.query_params)

    def _list_refunds(self, request: Request, body: Any) -> JSON:
        return _collection(list(self._refunds.values())[::-1], request.query_params)

    def _get_refund(self, request: Request, body: Any) -> JSON:
        return _found(self._refunds, request.path_params["id"])

    def _unknown_route(self, request: Request, body: Any) -> JSON:
        raise ApiError(404, "The requested URL was not found on the server.")

    def _create_refund(self, request: Request, body: Any) -> JSON:
        data = _object(body, {"amount", "speed", "notes", "receipt"})
        payment_id = request.path_params["id"]
        key = request.headers.get("x-refund-idempotency")
        fingerprint = json.dumps([payment_id, data], sort_keys=True)
        if key is not None:
            if not _IDEMPOTENCY_KEY.fullmatch(key):
                raise ApiError(400, "The idempotency key must be at least 10 characters of "
                               "letters, digits, hyphens and underscores.")  # fmt: skip
            earlier = self._idempotency.get(key)
            if earlier is not None and not earlier.done:
                raise ApiError(409, "A request with the same idempotency key is in progress.")
            if earlier is not None and earlier.fingerprint != fingerprint:
                raise ApiError(400, "Different request with the same idempotency key has "
                               "already been processed.")  # fmt: skip
            if earlier is not None:
                return self._refunds[earlier.refund_id]
        payment = _found(self._payments, payment_id)
        if not payment["captured"]:
            raise ApiError(400, "The payment has not been captured")
        refundable = payment["amount"] - payment["amount_refunded"]
        if refundable <= 0:
            raise ApiError(400, "The payment has been fully refunded already.")
        amount = _amount(data.get("amount", refundable))
        if amount > refundable:
            raise ApiError(400, "The refund amount provided is greater than amount captured.",
                           "amount")  # fmt: skip
        speed = data.get("speed", "normal")
        if speed not in ("normal", "optimum"):
            raise ApiError(400, "The selected speed is invalid.", "speed")
        refund: JSON = {
            "id": _new_id("rfnd_"), "entity": "refund", "amount": amount,
            "currency": payment["currency"], "payment_id": payment_id,
            "notes": _notes(data.get("notes")), "receipt": _receipt(data.get("receipt")),
            "acquirer_data": {"arn": None}, "created_at": _now(), "batch_id": None,
            "status": "pending", "speed_requested": speed, "speed_processed": "normal",
        }  # fmt: skip
        self._refunds[refund["id"]] = refund
        self._add_refunded(payment, amount)
        if key is not None:
            self._idempotency[key] = _IdempotentRefund(fingerprint, refund["id"])
            request.state.idempotency_key = key
        if self.auto_process_refunds_after is not None:
            self._schedule_auto_process(refund["id"], self.auto_process_refunds_after)
        return refund

    def _release_idempotency_key(self, request: Request) -> None:
        key = getattr(request.state, "idempotency_key", None)
        with self._lock:
            if key is not None and key in self._idempotency:
                self._idempotency[key].done = True

    @staticmethod
    def _add_refunded(payment: JSON, amount: int) -> None:
        refunded = payment["amount_refunded"] = payment["amount_refunded"] + amount
        full = refunded >= payment["amount"]
        payment["refund_status"] = None if refunded == 0 else "full" if full else "partial"
        payment["status"] = "refunded" if full else "captured"

    # -- simulated customers and gateway ------------------------------------------------------

    def event(self, event_type: str, payload: JSON) -> WebhookDelivery:
        """Build a signed webhook envelope around ``payload`` (``{"payment": {"entity": ...}}``)."""
        envelope = {
            "entity": "event", "account_id": ACCOUNT_ID, "event": event_type,
            "contains": list(payload), "payload": payload, "created_at": _now(),
        }  # fmt: skip
        body = json.dumps(envelope, separators=(",", ":")).encode()
        return WebhookDelivery(body, _new_id(), event_type, self.webhook_secret)

    def _newest_order_id(self, receipt: str) -> str:
        with self._lock:
            for order in reversed(self._orders.values()):
                if order["receipt"] == receipt:
                    return str(order["id"])
        raise KeyError(f"no order with receipt {receipt!r}")

    def _new_payment(self, order_id: str, amount: int | None, currency: str | None) -> JSON:
        if order_id not in self._orders:
            raise KeyError(f"no order {order_id!r}")
        order = self._orders[order_id]
        order["attempts"] += 1
        payment: JSON = {
            "id": _new_id("pay_"), "entity": "payment",
            "amount": order["amount"] if amount is None else amount,
            "currency": currency or order["currency"], "status": "created",
            "order_id": order_id, "invoice_id": None, "international": False, "method": "upi",
            "amount_refunded": 0, "refund_status": None, "captured": False, "description": None,
            "card_id": None, "bank": None, "wallet": None, "vpa": "success@razorpay",
            "email": "customer@example.com", "contact": "+919000090000",
            "notes": copy.deepcopy(order["notes"]), "fee": None, "tax": None,
            "error_code": None, "error_description": None, "error_source": None,
            "error_step": None, "error_reason": None,
            "acquirer_data": {"rrn": str(secrets.randbelow(10**12)).zfill(12)},
            "created_at": _now(),
        }  # fmt: skip
        self._payments[payment["id"]] = payment
        return payment

    def pay(
        self, order_id: str, amount: int | None = None, currency: str | None = None
    ) -> list[WebhookDelivery]:
        """Customer pays (auto-captured): payment.authorized, payment.captured, order.paid."""
        with self._lock:
            payment = self._new_payment(order_id, amount, currency)
            payment["status"] = "authorized"
            authorized = self.event("payment.authorized", {"payment": {"entity": payment}})
            fee = payment["amount"] * 2 // 100
            tax = fee * 18 // 100
            payment.update(status="captured", captured=True, fee=fee + tax, tax=tax)
            order = self._orders[order_id]
            order.update(amount_paid=payment["amount"], amount_due=0, status="paid")
            captured = self.event("payment.captured", {"payment": {"entity": payment}})
            paid = {"payment": {"entity": payment}, "order": {"entity": order}}
            return [authorized, captured, self.event("order.paid", paid)]

    def pay_by_receipt(
        self, receipt: str, amount: int | None = None, currency: str | None = None
    ) -> list[WebhookDelivery]:
        """Pay the newest order created with ``receipt``."""
        return self.pay(self._newest_order_id(receipt), amount, currency)

    def fail_payment(self, order_id: str) -> list[WebhookDelivery]:
        """Customer's payment attempt fails: payment.failed."""
        with self._lock:
            payment = self._new_payment(order_id, None, None)
            payment.update(
                status="failed", error_code="BAD_REQUEST_ERROR", error_description="Payment failed",
                error_source="bank", error_step="payment_authorization",
                error_reason="payment_failed",
            )  # fmt: skip
            order = self._orders[order_id]
            if order["status"] == "created":
                order["status"] = "attempted"
            return [self.event("payment.failed", {"payment": {"entity": payment}})]

    def _settle_refund(self, refund_id: str, status: str) -> list[WebhookDelivery]:
        with self._lock:
            if refund_id not in self._refunds:
                raise KeyError(f"no refund {refund_id!r}")
            refund = self._refunds[refund_id]
            allowed_from = ("pending",) if status == "processed" else ("pending", "processed")
            if refund["status"] not in allowed_from:
                raise ValueError(f"refund {refund_id} is already {refund['status']}")
            payment = self._payments[refund["payment_id"]]
            refund["status"] = status
            if status == "failed":
                self._add_refunded(payment, -refund["amount"])
            else:
                refund["acquirer_data"] = {"arn": str(secrets.randbelow(10**12)).zfill(12)}
            payload = {"refund": {"entity": refund}, "payment": {"entity": payment}}
            return [self.event(f"refund.{status}", payload)]

    def process_refund(self, refund_id: str) -> list[WebhookDelivery]:
        """The bank accepts a pending refund: refund.processed."""
        return self._settle_refund(refund_id, "processed")

    def fail_refund(self, refund_id: str) -> list[WebhookDelivery]:
        """A pending (or processed) refund fails and stops counting as refunded: refund.failed."""
        return self._settle_refund(refund_id, "failed")

    def _schedule_auto_process(self, refund_id: str, delay: float) -> None:
        timer = threading.Timer(delay, self._auto_process, (refund_id,))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _auto_process(self, refund_id: str) -> None:
        try:
            for delivery in self.process_refund(refund_id):
                if self.webhook_url:
                    self.deliver(delivery)
        except Exception:
            log.exception("razorpay simulator: auto-processing refund %s failed", refund_id)

    # -- webhook delivery -----------------------------------------------------------------------

    def _target(self, url: str | None) -> str:
        target = url or self.webhook_url
        if not target:
            raise ValueError("no webhook URL given and none configured")
        return target

    def deliver(
        self, delivery: WebhookDelivery, url: str | None = None, timeout: float = 10.0
    ) -> int:
        """POST the webhook like Razorpay does; return the receiver's HTTP status."""
        target = self._target(url)
        response = httpx.post(
            target, content=delivery.body, headers=delivery.headers(), timeout=timeout
        )
        return response.status_code

    async def deliver_async(
        self, delivery: WebhookDelivery, url: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> int:  # fmt: skip
        """``deliver`` for async callers, optionally on a caller-owned client."""
        target = self._target(url)
        if client is not None:
            response = await client.post(target, content=delivery.body, headers=delivery.headers())
            return response.status_code
        async with httpx.AsyncClient(timeout=10.0) as own_client:
            return await self.deliver_async(delivery, target, own_client)
