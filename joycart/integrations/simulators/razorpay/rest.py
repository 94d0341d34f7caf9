"""The simulated Razorpay's REST API (`/v1/...`, called with the lock held) and its
unauthenticated development controls (`/_sim/...`)."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from joycart.integrations.simulators.razorpay.customers import Customers
from joycart.integrations.simulators.razorpay.wire import (
    _CANNED,
    _IDEMPOTENCY_KEY,
    _SERVER_ERROR,
    JSON,
    ApiError,
    Handler,
    RecordedRequest,
    WebhookDelivery,
    _amount,
    _collection,
    _DropConnection,
    _found,
    _IdempotentRefund,
    _new_id,
    _notes,
    _now,
    _object,
    _parse_body,
    _receipt,
)


class RestApi(Customers):
    """The `/v1` REST API and the `/_sim` development controls."""

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
                return ApiError(400, "The amount must be at least INR 1.00", "amount").response()
            if kind in _CANNED:
                status, code, description = _CANNED[kind]
                return ApiError(status, description, code=code).response()
            if kind == "html":
                return HTMLResponse("<html><body>Please wait</body></html>", status_code=200)
            if kind == "empty":
                return Response(b"", status_code=200, media_type="application/json")
            if kind == "unexpected200":
                return JSONResponse({"status": "ok"})
            if kind == "hold":  # wait for the test's release_held(), then act normally
                # A threading.Event: the test releases it from another thread and event loop.
                while not self._released.is_set():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            if fault is not None and kind == "slow_before_acting":
                await self._hold_key_in_flight(request, fault.delay)
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

    async def _hold_key_in_flight(self, request: Request, delay: float) -> None:
        """Razorpay still processing the first request: its key answers 409, no refund yet."""
        key = request.headers.get("x-refund-idempotency")
        if key is not None:
            with self._lock:
                self._idempotency[key] = _IdempotentRefund("", "")
        await asyncio.sleep(delay)
        if key is not None:
            with self._lock:
                self._idempotency.pop(key, None)

    def _release_idempotency_key(self, request: Request) -> None:
        key = getattr(request.state, "idempotency_key", None)
        with self._lock:
            if key is not None and key in self._idempotency:
                self._idempotency[key].done = True
