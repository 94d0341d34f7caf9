"""Every Razorpay answer is done, definitely refused, or unknown: the table, and the same verdicts
reached through the real SDK against the fake Razorpay (which hides the HTTP status)."""

from __future__ import annotations

from typing import Any

import pytest

from joycart.integrations.razorpay import (
    GatewayRefused,
    GatewayUnknown,
    Outcome,
    RazorpayGateway,
    classify,
)
from joycart.integrations.simulators.razorpay import RazorpaySimulator


def _error(code: str, description: str) -> dict[str, Any]:
    return {"error": {"code": code, "description": description, "field": None}}


BAD = "BAD_REQUEST_ERROR"
REFUSED = Outcome.REFUSED
TABLE: list[tuple[int | None, Any, Outcome]] = [
    (200, {"id": "rfnd_X", "entity": "refund"}, Outcome.DONE),
    (200, {"entity": "collection", "count": 0, "items": []}, Outcome.DONE),
    (200, {"status": "ok"}, Outcome.UNKNOWN),  # 200 that is not the entity we asked for
    (200, None, Outcome.UNKNOWN),  # HTML or empty body (the SDK cannot parse it)
    (204, "{}", Outcome.UNKNOWN),
    (400, _error(BAD, "The refund amount provided is greater than amount captured."), REFUSED),
    (400, _error(BAD, "The payment has been fully refunded already."), Outcome.REFUSED),
    (400, _error(BAD, "The payment has not been captured"), Outcome.REFUSED),
    (400, _error(BAD, "The amount must be at least INR 1.00"), Outcome.REFUSED),
    (400, _error(BAD, "The selected speed is invalid."), Outcome.REFUSED),
    # Razorpay says the key was used with a different body: the first request may have acted.
    (400, _error(BAD, "Different request with the same idempotency key has already been "
                      "processed."), Outcome.UNKNOWN),
    (400, _error(BAD, "Something we have never seen"), Outcome.UNKNOWN),  # see REFUSALS' comment
    (400, {"foo": 1}, Outcome.UNKNOWN),
    (400, None, Outcome.UNKNOWN),
    (400, _error("SERVER_ERROR", "The amount must be at least INR 1.00"), Outcome.UNKNOWN),
    (401, _error(BAD, "Authentication failed"), Outcome.UNKNOWN),
    (403, _error(BAD, "Access forbidden for requested resource"), Outcome.UNKNOWN),
    (404, _error("NOT_FOUND", "The requested URL was not found on the server."), Outcome.UNKNOWN),
    (409, _error(BAD, "A request with the same idempotency key is in progress."), Outcome.UNKNOWN),
    (429, _error(BAD, "Too many requests"), Outcome.UNKNOWN),
    (500, _error("SERVER_ERROR", "The server encountered an error."), Outcome.UNKNOWN),
    (502, _error("GATEWAY_ERROR", "Bad gateway"), Outcome.UNKNOWN),
    (502, None, Outcome.UNKNOWN),
    (503, None, Outcome.UNKNOWN),
    (None, None, Outcome.UNKNOWN),  # timeout or dropped connection: no answer at all
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "outcome"), TABLE)
def test_classifier_table(status: int | None, body: Any, outcome: Outcome) -> None:
    assert classify(status, body) is outcome


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("400", GatewayRefused),
        ("401", GatewayUnknown),
        ("403", GatewayUnknown),
        ("404", GatewayUnknown),
        ("409", GatewayUnknown),
        ("429", GatewayUnknown),
        ("500", GatewayUnknown),
        ("html502", GatewayUnknown),
        ("html", GatewayUnknown),
        ("empty", GatewayUnknown),
        ("unexpected200", GatewayUnknown),
        ("drop_before_acting", GatewayUnknown),
        ("drop_after_acting", GatewayUnknown),
    ],
)
async def test_the_real_sdk_answers_reach_the_same_verdicts(
    fault: str, error: type[Exception], razorpay: RazorpaySimulator
) -> None:
    gateway = RazorpayGateway(
        key_id=razorpay.key_id,
        key_secret=razorpay.key_secret,
        base_url=razorpay.base_url,
        timeout=5.0,
    )
    razorpay.inject("POST", "/v1/orders", fault)
    with pytest.raises(error):
        await gateway.create_order(amount=50_000, currency="INR", receipt="r-1", notes={})
    created = await gateway.create_order(amount=50_000, currency="INR", receipt="r-2", notes={})
    assert created.id in razorpay.orders
