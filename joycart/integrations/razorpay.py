"""Razorpay through its official SDK: synchronous, so every call runs in a worker thread.

The SDK is only imported here. It has no default timeout and its own retries would re-send POSTs,
so every call passes `timeout=` and SDK retries stay off; we retry ourselves through the job queue,
with refunds protected by `X-Refund-Idempotency`.

    GatewayError
    ├── GatewayUnavailable   timeouts, connection errors, 5xx, unparsable answers: the effect is
    │                        unknown, so the caller must look before it tries again
    └── GatewayRejected      a definite 4xx refusal: nothing happened at Razorpay
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import razorpay
import requests
from razorpay.errors import BadRequestError, ServerError
from razorpay.errors import GatewayError as SdkGatewayError

log = logging.getLogger("joycart.razorpay")


class GatewayError(Exception):
    pass


class GatewayUnavailable(GatewayError):
    pass


class GatewayRejected(GatewayError):
    pass


@dataclass(frozen=True)
class GatewayOrder:
    id: str
    amount: int
    currency: str
    receipt: str | None
    status: str


@dataclass(frozen=True)
class GatewayRefund:
    id: str
    payment_id: str
    amount: int
    status: str
    notes: dict[str, str]
    receipt: str | None


@dataclass(frozen=True)
class GatewayPayment:
    id: str
    order_id: str | None
    amount: int
    currency: str
    status: str


class PaymentGateway(Protocol):
    key_id: str

    def payment_signature_is_valid(
        self, *, order_id: str, payment_id: str, signature: str
    ) -> bool: ...

    async def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> GatewayOrder: ...

    async def find_orders_by_receipt(self, receipt: str) -> list[GatewayOrder]: ...

    async def order_payments(self, order_id: str) -> list[GatewayPayment]: ...

    async def create_refund(
        self,
        *,
        payment_id: str,
        amount: int,
        receipt: str,
        notes: dict[str, str],
        idempotency_key: str,
    ) -> GatewayRefund: ...

    async def list_refunds(self, payment_id: str) -> list[GatewayRefund]: ...

    async def fetch_refund(self, refund_id: str) -> GatewayRefund: ...


def _order(raw: dict[str, Any]) -> GatewayOrder:
    return GatewayOrder(
        id=str(raw["id"]),
        amount=int(raw["amount"]),
        currency=str(raw["currency"]),
        receipt=raw.get("receipt"),
        status=str(raw.get("status", "")),
    )


def _refund(raw: dict[str, Any]) -> GatewayRefund:
    notes = raw.get("notes") or {}
    return GatewayRefund(
        id=str(raw["id"]),
        payment_id=str(raw["payment_id"]),
        amount=int(raw["amount"]),
        status=str(raw.get("status", "")),
        notes={str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {},
        receipt=raw.get("receipt"),
    )


def _payment(raw: dict[str, Any]) -> GatewayPayment:
    return GatewayPayment(
        id=str(raw["id"]),
        order_id=raw.get("order_id"),
        amount=int(raw["amount"]),
        currency=str(raw["currency"]),
        status=str(raw.get("status", "")),
    )


class RazorpayGateway:
    """The real gateway (or the simulator, when `base_url` points at it) through the SDK."""

    def __init__(self, *, key_id: str, key_secret: str, base_url: str, timeout: float) -> None:
        self.key_id = key_id
        self._key_secret = key_secret
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        # requests.Session is not documented thread-safe: one SDK client per worker thread.
        self._local = threading.local()

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = razorpay.Client(auth=(self.key_id, self._key_secret), base_url=self._base_url)
            client.set_app_details({"title": "JoyCart", "version": "0.1.0"})
            # The SDK looks its own version up in package metadata on every request.
            version = client._get_version()
            client._get_version = lambda: version
            self._local.client = client
        return client

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            return fn(self._client(), *args, timeout=self._timeout, **kwargs)

        try:
            result = await asyncio.to_thread(run)
        except BadRequestError as exc:
            log.warning("razorpay refused %s: %s", what, exc)
            raise GatewayRejected(str(exc) or "Razorpay refused the request") from exc
        except (ServerError, SdkGatewayError, requests.RequestException, ValueError) as exc:
            log.warning("razorpay unavailable for %s: %s: %s", what, type(exc).__name__, exc)
            raise GatewayUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if not isinstance(result, dict):
            raise GatewayUnavailable(f"unexpected answer to {what}: {result!r}"[:300])
        return result

    def payment_signature_is_valid(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        """Checkout's handler signature: hex HMAC-SHA256 of "order_id|payment_id" with the key
        secret. `order_id` must be ours, never the one the browser reports."""
        message = f"{order_id}|{payment_id}".encode()
        expected = hmac.new(self._key_secret.encode(), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    async def create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> GatewayOrder:
        data = {"amount": amount, "currency": currency, "receipt": receipt, "notes": notes}
        raw = await self._call("order.create", lambda c, **kw: c.order.create(data, **kw))
        return _order(raw)

    async def find_orders_by_receipt(self, receipt: str) -> list[GatewayOrder]:
        raw = await self._call(
            "order.all", lambda c, **kw: c.order.all({"receipt": receipt, "count": 100}, **kw)
        )
        return [_order(item) for item in raw.get("items", [])]

    async def order_payments(self, order_id: str) -> list[GatewayPayment]:
        raw = await self._call("order.payments", lambda c, **kw: c.order.payments(order_id, **kw))
        return [_payment(item) for item in raw.get("items", [])]

    async def create_refund(
        self,
        *,
        payment_id: str,
        amount: int,
        receipt: str,
        notes: dict[str, str],
        idempotency_key: str,
    ) -> GatewayRefund:
        data = {"amount": amount, "speed": "normal", "receipt": receipt, "notes": notes}
        raw = await self._call(
            "payment.refund",
            lambda c, **kw: c.payment.refund(
                payment_id, data, headers={"X-Refund-Idempotency": idempotency_key}, **kw
            ),
        )
        return _refund(raw)

    async def list_refunds(self, payment_id: str) -> list[GatewayRefund]:
        raw = await self._call(
            "payment.fetch_multiple_refund",
            lambda c, **kw: c.payment.fetch_multiple_refund(payment_id, {"count": 100}, **kw),
        )
        return [_refund(item) for item in raw.get("items", [])]

    async def fetch_refund(self, refund_id: str) -> GatewayRefund:
        raw = await self._call("refund.fetch", lambda c, **kw: c.refund.fetch(refund_id, **kw))
        return _refund(raw)
