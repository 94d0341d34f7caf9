"""The Razorpay webhook: verified on raw bytes, deduplicated, applied once, never un-paying."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import (
    RazorpaySimulator,
    WebhookDelivery,
    sign_webhook,
)
from joycart.worker import run_due_jobs
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import Api, assert_invariants, make_jobs_due

ORDER = "query($id: ID!) { order(id: $id) { status payment { status } events { kind } } }"


async def _pending_order(api: Api, price: int = 20_000) -> tuple[str, str, str]:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    product = await api.create_product(seller, price=price, stock=5)
    await api.add_to_cart(buyer, product, 1)
    result = await api.checkout(buyer)
    return result["order"]["id"], result["order"]["payment"]["razorpayOrderId"], buyer.token


async def _post(http: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await http.post("/webhooks/razorpay", content=body, headers=headers)


async def _count(services: Services, sql: str) -> int:
    async with services.engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


async def _captured(razorpay: RazorpaySimulator, rzp_order: str, **kw: int) -> WebhookDelivery:
    deliveries = razorpay.pay(rzp_order, **kw)  # type: ignore[arg-type]
    return next(d for d in deliveries if d.event_type == "payment.captured")


async def test_bad_signatures_get_400_and_change_nothing(
    api: Api, http: httpx.AsyncClient, razorpay: RazorpaySimulator, services: Services
) -> None:
    order_id, rzp_order, token = await _pending_order(api)
    good = await _captured(razorpay, rzp_order)
    headers = good.headers()
    tampered = bytearray(good.body)
    tampered[tampered.index(b'"captured"') + 2] ^= 1  # one byte changed
    attempts = [
        (good.body, {**headers, "X-Razorpay-Signature": "0" * 64}),
        (good.body, {k: v for k, v in headers.items() if k != "X-Razorpay-Signature"}),
        (good.body, {**headers, "X-Razorpay-Signature": "é" * 32}),
        (good.body, {**headers, "X-Razorpay-Signature": sign_webhook(good.body, "wrong-secret")}),
        (bytes(tampered), headers),
    ]
    for body, hdrs in attempts:
        encoded = [(k.encode(), v.encode("utf-8")) for k, v in hdrs.items()]
        response = await http.post("/webhooks/razorpay", content=body, headers=encoded)
        assert response.status_code == 400
    assert await _count(services, "SELECT count(*) FROM webhook_events") == 0
    data = await api.gql(ORDER, {"id": order_id}, token)
    assert data["order"]["status"] == "PENDING_PAYMENT"


async def test_twenty_deliveries_of_one_event_change_state_once(
    api: Api, http: httpx.AsyncClient, razorpay: RazorpaySimulator, services: Services
) -> None:
    order_id, rzp_order, token = await _pending_order(api)
    captured = await _captured(razorpay, rzp_order)
    responses = await asyncio.gather(
        *(
            _post(
                http, captured.body, {**captured.headers(), "X-Razorpay-Event-Id": f"evt{i:011d}"}
            )
            for i in range(20)
        )
    )
    assert all(200 <= r.status_code < 300 for r in responses)
    assert await _count(services, "SELECT count(*) FROM captures") == 1
    assert await _count(services, "SELECT deliveries FROM webhook_events") == 20
    data = await api.gql(ORDER, {"id": order_id}, token)
    assert data["order"]["status"] == "PAID"
    assert [e["kind"] for e in data["order"]["events"]].count("PAYMENT_CAPTURED") == 1
    await assert_invariants(services.engine)


async def test_order_paid_after_payment_captured_is_a_duplicate_capture_and_writes_nothing(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    """Two events (two bodies, two inbox rows) carrying the same captured payment: the second
    finds its capture already recorded and changes nothing."""
    order_id, rzp_order, token = await _pending_order(api)
    deliveries = {d.event_type: d for d in razorpay.pay(rzp_order)}
    assert await razorpay.deliver_async(deliveries["payment.captured"]) == 200
    assert await razorpay.deliver_async(deliveries["order.paid"]) == 200
    outcomes = await _count(
        services,
        "SELECT count(*) FROM webhook_events WHERE event_type = 'order.paid'"
        " AND outcome = 'duplicate capture' AND processed_at IS NOT NULL",
    )
    assert outcomes == 1
    assert await _count(services, "SELECT count(*) FROM captures") == 1
    data = await api.gql(ORDER, {"id": order_id}, token)
    assert data["order"]["status"] == "PAID"
    assert [e["kind"] for e in data["order"]["events"]] == [
        "ORDER_PLACED",
        "PAYMENT_SESSION_OPENED",
        "PAYMENT_CAPTURED",
        "ORDER_PAID",
    ]
    await assert_invariants(services.engine)


async def test_a_short_capture_is_not_paid_and_is_refunded(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order_id, rzp_order, token = await _pending_order(api, price=20_000)
    short = await _captured(razorpay, rzp_order, amount=19_900)
    assert await razorpay.deliver_async(short) == 200
    data = await api.gql(ORDER, {"id": order_id}, token)
    assert data["order"]["status"] == "PENDING_PAYMENT"
    kinds = [e["kind"] for e in data["order"]["events"]]
    assert "CAPTURE_NOT_OWED" in kinds
    assert "AUTOMATIC_REFUND_INITIATED" in kinds
    assert (
        await _count(services, "SELECT amount FROM refunds WHERE reason = 'UNOWED_CAPTURE'")
        == 19_900
    )
    await assert_invariants(services.engine)


async def test_payment_failed_after_capture_leaves_the_order_paid(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order_id, rzp_order, token = await _pending_order(api)
    for delivery in razorpay.pay(rzp_order):
        await razorpay.deliver_async(delivery)
    failed = razorpay.event(
        "payment.failed",
        {
            "payment": {
                "entity": {
                    "id": "pay_LATEFAILURE0001",
                    "order_id": rzp_order,
                    "amount": 20_000,
                    "currency": "INR",
                    "status": "failed",
                    "error_description": "Payment failed",
                }
            }
        },
    )
    assert await razorpay.deliver_async(failed) == 200
    data = await api.gql(ORDER, {"id": order_id}, token)
    assert data["order"]["status"] == "PAID"
    assert data["order"]["payment"]["status"] == "CAPTURED"


async def test_unknown_orders_and_ignored_event_types_get_2xx_and_are_recorded(
    http: httpx.AsyncClient, razorpay: RazorpaySimulator, services: Services
) -> None:
    unknown = razorpay.event(
        "payment.captured",
        {
            "payment": {
                "entity": {
                    "id": "pay_X",
                    "order_id": "order_NOPE",
                    "amount": 100,
                    "currency": "INR",
                    "status": "captured",
                }
            }
        },
    )
    other = razorpay.event("invoice.paid", {"invoice": {"entity": {"id": "inv_1"}}})
    for delivery in (unknown, other):
        response = await _post(http, delivery.body, delivery.headers())
        assert response.status_code == 200
    outcomes = await _all(services, "SELECT outcome FROM webhook_events ORDER BY id")
    assert outcomes == ["unknown razorpay order", "ignored: event type invoice.paid"]


async def _all(services: Services, sql: str) -> list[object]:
    async with services.engine.connect() as conn:
        return list((await conn.scalars(text(sql))).all())


async def test_signature_is_checked_on_the_raw_bytes_not_reserialized_json(
    http: httpx.AsyncClient, razorpay: RazorpaySimulator
) -> None:
    delivery = razorpay.event("invoice.paid", {"x": {"entity": {"b": 1, "a": 2}}})
    spaced = json.dumps(json.loads(delivery.body), indent=2).encode()
    headers = {**delivery.headers(), "X-Razorpay-Signature": sign_webhook(spaced, WEBHOOK_SECRET)}
    assert (await _post(http, spaced, headers)).status_code == 200
    assert (await _post(http, delivery.body, headers)).status_code == 400


async def test_a_webhook_for_a_locked_order_is_answered_fast_and_applied_by_the_worker(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    order_id, rzp_order, token = await _pending_order(api)
    captured = await _captured(razorpay, rzp_order)
    async with services.engine.connect() as holder:
        await holder.execute(
            text("SELECT id FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id}
        )
        started = time.monotonic()
        status = await razorpay.deliver_async(captured)
        elapsed = time.monotonic() - started
        await holder.rollback()
    assert status == 202
    assert elapsed < 5
    assert (await api.gql(ORDER, {"id": order_id}, token))["order"]["status"] == "PENDING_PAYMENT"
    await make_jobs_due(services.engine)
    assert (await run_due_jobs(services)).jobs_done >= 1
    assert (await api.gql(ORDER, {"id": order_id}, token))["order"]["status"] == "PAID"
    await assert_invariants(services.engine)
