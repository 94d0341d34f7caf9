"""Razorpay through its official SDK: synchronous, so every call runs in a worker thread.

The SDK is only imported here. It has no default timeout and its own retries would re-send POSTs,
so every call passes `timeout=` and SDK retries stay off; we retry ourselves through the job queue,
with refunds protected by `X-Refund-Idempotency`.

Every answer is classified in ONE place, `classify(status, body)`:

    done      2xx with the entity we asked for
    refused   HTTP 400 whose description names a request Razorpay cannot have acted on
              (`REFUSALS`) -> `GatewayRefused`
    unknown   everything else -> `GatewayUnknown`: 409 (same idempotency key still in flight),
              401/403/404/429, 5xx, HTML/empty/unexpected bodies, timeouts, dropped connections.
              The effect may have happened; the caller looks before it tries again, with the same
              idempotency key. `errors.GatewayUnavailable` is what callers show the client.

The SDK picks its exception from the body's `error.code` and hides the HTTP status, so a response
hook on the SDK's `requests` session records the status and body of the last answer per thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import hashlib
import hmac
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import razorpay
import requests
from razorpay.errors import BadRequestError, ServerError
from razorpay.errors import GatewayError as SdkGatewayError

from joycart.integrations.razorpay_entities import GatewayOrder as GatewayOrder
from joycart.integrations.razorpay_entities import GatewayPayment as GatewayPayment
from joycart.integrations.razorpay_entities import GatewayRefund as GatewayRefund
from joycart.integrations.razorpay_entities import order_of, payment_of, refund_of

log = logging.getLogger("joycart.razorpay")
# The SDK blocks, so its calls run on threads: on threads of their own, so that a Razorpay
# slowdown (each call up to the gateway timeout) never queues password hashing, image writes or
# anything else on asyncio's small default executor (min(32, cores + 4) threads).
_CALL_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="razorpay")
# Razorpay's largest page (`count`), and how many pages a listing reads before it gives up.
PAGE = 100
MAX_PAGES = 50


class GatewayError(Exception):
    pass


class GatewayUnknown(GatewayError):
    """Razorpay may or may not have acted: look (same key) before trying again."""


class GatewayRefused(GatewayError):
    """A definite refusal: Razorpay cannot have acted on this request."""


class Outcome(enum.Enum):
    DONE = "done"
    REFUSED = "refused"
    UNKNOWN = "unknown"


# HTTP 400 descriptions that say the request itself was invalid for the payment's state, so nothing
# happened (razorpay docs api/refunds/create-normal.md, api/orders/create.md). Matched as lower-case
# prefixes. Any OTHER 400 description counts as UNKNOWN: Razorpay reuses BAD_REQUEST_ERROR for
# idempotency conflicts ("Different request with the same idempotency key ...") and for messages we
# have not seen; treating an unseen one as a refusal could fail a refund Razorpay did make, while
# treating it as unknown only costs a look-up and a retry with the same key.
REFUSALS = (
    "the refund amount provided is greater than amount captured",
    "the refund amount provided is greater than amount refundable",
    "the payment has been fully refunded already",
    "the payment has not been captured",
    "the amount must be at least",
    "the amount must be an integer",
    "the amount field is required",
    "invalid amount",
    "the selected speed is invalid",
    "the id provided does not exist",
    "refund is not allowed",
)


def _description(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("description") or "")
    return ""


def classify(status: int | None, body: Any) -> Outcome:
    """The one place a Razorpay answer becomes done, definitely refused, or unknown."""
    if status is None:  # no answer at all: timeout, dropped connection
        return Outcome.UNKNOWN
    if 200 <= status < 300:
        # An entity has an id, a collection has items; any other 2xx body is not what we asked for.
        if isinstance(body, dict) and (body.get("id") or isinstance(body.get("items"), list)):
            return Outcome.DONE
        return Outcome.UNKNOWN
    error = body.get("error") if isinstance(body, dict) else None
    if (
        status == 400
        and isinstance(error, dict)
        and error.get("code") == "BAD_REQUEST_ERROR"
        and _description(body).strip().lower().startswith(REFUSALS)
    ):
        return Outcome.REFUSED
    return Outcome.UNKNOWN


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
            # The SDK maps errors by body only; remember the HTTP status of each answer.
            client.session.hooks["response"].append(self._remember)
            self._local.client = client
        return client

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.status = response.status_code
        try:
            self._local.body = response.json()
        except ValueError:
            self._local.body = None

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def run() -> tuple[int | None, Any, Exception | None]:
            self._local.status, self._local.body = None, None
            try:
                result = fn(self._client(), *args, timeout=self._timeout, **kwargs)
            except (
                BadRequestError, ServerError, SdkGatewayError, requests.RequestException, ValueError
            ) as exc:  # fmt: skip
                return self._local.status, self._local.body, exc
            return self._local.status, result, None

        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        status, body, error = await loop.run_in_executor(_CALL_THREADS, call, run)
        outcome = classify(status, body)
        if outcome is Outcome.DONE and error is None:
            return body
        detail = _description(body) or (f"{type(error).__name__}: {error}" if error else repr(body))
        message = f"{what}: HTTP {status}: {detail}"[:300]
        if outcome is Outcome.REFUSED:
            log.warning("razorpay refused %s", message)
            raise GatewayRefused(message)
        log.warning("razorpay answer unknown for %s", message)
        raise GatewayUnknown(message) from error

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
        return order_of(raw)

    async def find_orders_by_receipt(self, receipt: str) -> list[GatewayOrder]:
        items = await self._every(
            "order.all",
            lambda c, skip, **kw: c.order.all(
                {"receipt": receipt, "count": PAGE, "skip": skip}, **kw
            ),
        )
        return [order_of(item) for item in items]

    async def _every(self, what: str, fetch: Any) -> list[dict[str, Any]]:
        """Every item of a Razorpay collection, page by page: `count` is at most 100, so a
        payment with more refunds than that (or a receipt with more orders) is read with `skip`
        until a short page. Newest first, so a new item during the walk can only repeat one
        already seen (dropped by id), never hide an older one. More than `MAX_PAGES` pages
        raises `GatewayUnknown`: the caller cannot tell, so it must not decide."""
        items: dict[str, dict[str, Any]] = {}
        for page in range(MAX_PAGES):
            raw = await self._call(what, lambda c, skip=page * PAGE, **kw: fetch(c, skip, **kw))
            batch = raw.get("items", []) if isinstance(raw, dict) else []
            for item in batch:
                items.setdefault(str(item.get("id")), item)
            if len(batch) < PAGE:
                return list(items.values())
        raise GatewayUnknown(f"{what}: more than {MAX_PAGES * PAGE} items, not all read")

    async def order_payments(self, order_id: str) -> list[GatewayPayment]:
        raw = await self._call("order.payments", lambda c, **kw: c.order.payments(order_id, **kw))
        return [payment_of(item) for item in raw.get("items", [])]

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
        return refund_of(raw)

    async def list_refunds(self, payment_id: str) -> list[GatewayRefund]:
        items = await self._every(
            "payment.fetch_multiple_refund",
            lambda c, skip, **kw: c.payment.fetch_multiple_refund(
                payment_id, {"count": PAGE, "skip": skip}, **kw
            ),
        )
        return [refund_of(item) for item in items]

    async def fetch_refund(self, refund_id: str) -> GatewayRefund:
        raw = await self._call("refund.fetch", lambda c, **kw: c.refund.fetch(refund_id, **kw))
        return refund_of(raw)
