"""What JoyCart reads of Razorpay's entities: orders, payments and refunds, as frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def order_of(raw: dict[str, Any]) -> GatewayOrder:
    return GatewayOrder(
        id=str(raw["id"]),
        amount=int(raw["amount"]),
        currency=str(raw["currency"]),
        receipt=raw.get("receipt"),
        status=str(raw.get("status", "")),
    )


def refund_of(raw: dict[str, Any]) -> GatewayRefund:
    notes = raw.get("notes") or {}
    return GatewayRefund(
        id=str(raw["id"]),
        payment_id=str(raw["payment_id"]),
        amount=int(raw["amount"]),
        status=str(raw.get("status", "")),
        notes={str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {},
        receipt=raw.get("receipt"),
    )


def payment_of(raw: dict[str, Any]) -> GatewayPayment:
    return GatewayPayment(
        id=str(raw["id"]),
        order_id=raw.get("order_id"),
        amount=int(raw["amount"]),
        currency=str(raw["currency"]),
        status=str(raw.get("status", "")),
    )
