"""confirmPayment: the SPA's Checkout result is verified and logged, never trusted to pay."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.conftest import KEY_SECRET
from tests.helpers import Account, Api, assert_invariants

CONFIRM = """mutation($o: ID!, $i: ConfirmPaymentInput!) { confirmPayment(orderId: $o, input: $i) {
    order { status events { kind } } errors { code field } } }"""


def checkout_signature(rzp_order: str, payment_id: str) -> str:
    message = f"{rzp_order}|{payment_id}".encode()
    return hmac.new(KEY_SECRET.encode(), message, hashlib.sha256).hexdigest()


async def _order(api: Api) -> tuple[Account, str, str]:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=12_000, stock=3)
    await api.add_to_cart(buyer, product, 1)
    order = (await api.checkout(buyer))["order"]
    return buyer, order["id"], order["payment"]["razorpayOrderId"]


async def confirm(api: Api, who: Account, order_id: str, **fields: str) -> dict[str, Any]:
    data = await api.gql(CONFIRM, {"o": order_id, "i": fields}, who.token)
    result: dict[str, Any] = data["confirmPayment"]
    return result


async def test_a_verified_checkout_result_pays_only_because_razorpay_reports_the_capture(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    buyer, order_id, rzp_order = await _order(api)
    deliveries = razorpay.pay(rzp_order)  # captured at Razorpay; the webhooks are late
    payment_id = next(iter(razorpay.payments))

    result = await confirm(
        api,
        buyer,
        order_id,
        razorpayOrderId=rzp_order,
        razorpayPaymentId=payment_id,
        razorpaySignature=checkout_signature(rzp_order, payment_id),
    )

    assert result["errors"] == []
    assert result["order"]["status"] == "PAID"
    kinds = [e["kind"] for e in result["order"]["events"]]
    assert kinds.index("PAYMENT_SUBMITTED") < kinds.index("PAYMENT_CAPTURED")
    assert razorpay.requests_to("GET", f"/v1/orders/{rzp_order}/payments")
    for delivery in deliveries:  # the late webhooks change nothing more
        assert await razorpay.deliver_async(delivery) == 200
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM captures")) == 1
    await assert_invariants(services.engine)


async def test_a_valid_signature_for_a_payment_razorpay_has_not_captured_pays_nothing(
    api: Api, razorpay: RazorpaySimulator
) -> None:
    buyer, order_id, rzp_order = await _order(api)
    result = await confirm(
        api,
        buyer,
        order_id,
        razorpayOrderId=rzp_order,
        razorpayPaymentId="pay_NOTCAPTURED001",
        razorpaySignature=checkout_signature(rzp_order, "pay_NOTCAPTURED001"),
    )
    assert result["errors"] == []
    assert result["order"]["status"] == "PENDING_PAYMENT"
    assert "PAYMENT_SUBMITTED" in [e["kind"] for e in result["order"]["events"]]


async def test_forged_or_foreign_checkout_results_are_refused_and_leave_no_trace(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    buyer, order_id, rzp_order = await _order(api)
    other, _, other_rzp = await _order(api)
    razorpay.pay(rzp_order)
    payment_id = next(iter(razorpay.payments))
    good = checkout_signature(rzp_order, payment_id)

    forged = await confirm(
        api,
        buyer,
        order_id,
        razorpayOrderId=rzp_order,
        razorpayPaymentId=payment_id,
        razorpaySignature="0" * 64,
    )
    assert forged["errors"] == [{"code": "INVALID_INPUT", "field": "razorpaySignature"}]
    foreign = await confirm(
        api,
        buyer,
        order_id,
        razorpayOrderId=other_rzp,
        razorpayPaymentId=payment_id,
        razorpaySignature=checkout_signature(other_rzp, payment_id),
    )
    assert foreign["errors"] == [{"code": "INVALID_INPUT", "field": "razorpayOrderId"}]
    stranger = await confirm(
        api,
        other,
        order_id,
        razorpayOrderId=rzp_order,
        razorpayPaymentId=payment_id,
        razorpaySignature=good,
    )
    assert stranger["errors"] == [{"code": "NOT_FOUND", "field": "orderId"}]

    async with services.engine.connect() as conn:
        assert (
            await conn.scalar(
                text("SELECT count(*) FROM order_events WHERE kind = 'PAYMENT_SUBMITTED'")
            )
            == 0
        )
        assert await conn.scalar(text("SELECT count(*) FROM orders WHERE status = 'PAID'")) == 0


async def test_razorpay_down_after_checkout_leaves_the_order_to_its_webhook(
    api: Api, razorpay: RazorpaySimulator
) -> None:
    buyer, order_id, rzp_order = await _order(api)
    deliveries = razorpay.pay(rzp_order)
    payment_id = next(iter(razorpay.payments))
    razorpay.inject("GET", "/v1/orders/", "500")
    result = await confirm(
        api,
        buyer,
        order_id,
        razorpayOrderId=rzp_order,
        razorpayPaymentId=payment_id,
        razorpaySignature=checkout_signature(rzp_order, payment_id),
    )
    assert result["errors"] == []
    assert result["order"]["status"] == "PENDING_PAYMENT"
    for delivery in deliveries:
        assert await razorpay.deliver_async(delivery) == 200
    order = await api.gql(
        "query($id: ID!) { order(id: $id) { status } }", {"id": order_id}, buyer.token
    )
    assert order["order"]["status"] == "PAID"
