"""Simulated customers and the gateway's own doings: payments, refunds settling, webhooks sent
like Razorpay sends them."""

from __future__ import annotations

import copy
import json
import logging
import secrets
import threading

import httpx

from joycart.integrations.simulators.razorpay.state import SimulatorState
from joycart.integrations.simulators.razorpay.wire import (
    ACCOUNT_ID,
    JSON,
    WebhookDelivery,
    _new_id,
    _now,
)

log = logging.getLogger(__name__)


class Customers(SimulatorState):
    """Simulated customers paying, refunds settling, webhooks sent like Razorpay sends them."""

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
