"""The Razorpay simulator driven by the real razorpay SDK, as the gateway adapter will drive it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import razorpay
import requests
from razorpay.errors import BadRequestError, ServerError

from joycart.integrations.simulators.razorpay import (
    RazorpaySimulator,
    WebhookDelivery,
    sign_webhook,
)

KEY_ID = "rzp_test_KEYID"
KEY_SECRET = "key_secret_test"
WEBHOOK_SECRET = "whsec_sim"
TIMEOUT = 5


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook endpoint on http.server that records every POST and answers 200."""

    def __init__(self) -> None:
        self.posts: list[Received] = []
        self.arrived = threading.Event()
        posts, arrived = self.posts, self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append(Received(self.path, dict(self.headers.items()), body))
                arrived.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/razorpay"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            self.arrived.clear()
            if len(self.posts) >= count or not self.arrived.wait(deadline - time.monotonic()):
                break
        assert len(self.posts) >= count, f"expected {count} webhooks, got {len(self.posts)}"
        return list(self.posts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def server() -> Iterator[RazorpaySimulator]:
    sim = RazorpaySimulator(key_id=KEY_ID, key_secret=KEY_SECRET, webhook_secret=WEBHOOK_SECRET)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(server: RazorpaySimulator) -> RazorpaySimulator:
    server.reset()
    server.webhook_url = None
    return server


@pytest.fixture
def client(sim: RazorpaySimulator) -> Iterator[razorpay.Client]:
    sdk = razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=sim.base_url)
    yield sdk
    sdk.session.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def create_order(client: razorpay.Client, receipt: str = "jc_order_1", amount: int = 50000) -> Any:
    data = {"amount": amount, "currency": "INR", "receipt": receipt, "notes": {"order": "1"}}
    return client.order.create(data, timeout=TIMEOUT)


def paid_payment_id(sim: RazorpaySimulator, client: razorpay.Client, amount: int = 50000) -> str:
    deliveries = sim.pay(create_order(client, amount=amount)["id"])
    return str(deliveries[1].json()["payload"]["payment"]["entity"]["id"])


def refund(client: razorpay.Client, payment_id: str, key: str | None = None, **data: Any) -> Any:
    headers = {"X-Refund-Idempotency": key} if key else {}
    return client.payment.refund(payment_id, data, headers=headers, timeout=TIMEOUT)


def test_order_is_created_fetched_and_listed_by_receipt(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    first = create_order(client, receipt="jc_order_7")
    create_order(client, receipt="jc_order_8")
    second = create_order(client, receipt="jc_order_7", amount=12300)

    assert first["id"].startswith("order_")
    assert len(first["id"]) == len("order_") + 14
    assert first["status"] == "created"
    assert first["amount_due"] == 50000
    assert first["notes"] == {"order": "1"}
    assert client.order.fetch(first["id"], timeout=TIMEOUT) == first
    listed = client.order.all({"receipt": "jc_order_7"}, timeout=TIMEOUT)
    assert listed["entity"] == "collection"
    assert listed["count"] == 2
    assert [o["id"] for o in listed["items"]] == [second["id"], first["id"]]
    assert sim.requests_to("POST", "/v1/orders")[0].json["receipt"] == "jc_order_7"


def test_wrong_key_secret_is_refused(sim: RazorpaySimulator) -> None:
    intruder = razorpay.Client(auth=(KEY_ID, "wrong"), base_url=sim.base_url)
    with pytest.raises(BadRequestError, match="Authentication failed"):
        create_order(intruder)
    intruder.session.close()
    answer = httpx.get(f"{sim.base_url}/v1/orders", timeout=TIMEOUT)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    assert sim.orders == {}


def test_order_below_one_rupee_is_refused(sim: RazorpaySimulator, client: razorpay.Client) -> None:
    with pytest.raises(BadRequestError, match=r"at least INR 1\.00"):
        create_order(client, amount=99)


def test_order_with_unknown_field_is_refused(client: razorpay.Client) -> None:
    data = {"amount": 50000, "currency": "INR", "receipt": "r", "customer": "x"}
    with pytest.raises(BadRequestError, match="customer is/are not required"):
        client.order.create(data, timeout=TIMEOUT)


def test_retried_refund_with_same_idempotency_key_makes_one_refund(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    payment_id = paid_payment_id(sim, client)

    first = refund(client, payment_id, "rfd-0001-item-7", amount=1500, receipt="rf_7")
    again = refund(client, payment_id, "rfd-0001-item-7", amount=1500, receipt="rf_7")

    assert again["id"] == first["id"]
    assert first["status"] == "pending"
    assert first["notes"] == []
    assert first["acquirer_data"] == {"arn": None}
    assert list(sim.refunds) == [first["id"]]
    assert sim.payments[payment_id]["amount_refunded"] == 1500
    assert sim.payments[payment_id]["refund_status"] == "partial"
    listed = client.payment.fetch_multiple_refund(payment_id, {"count": 100}, timeout=TIMEOUT)
    assert [r["id"] for r in listed["items"]] == [first["id"]]
    assert sim.requests_to("POST", "/v1/payments")[0].headers["x-refund-idempotency"]


def test_reused_idempotency_key_with_different_body_is_refused(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    payment_id = paid_payment_id(sim, client)
    refund(client, payment_id, "rfd-0002-item-7", amount=1500)

    with pytest.raises(BadRequestError, match="Different request with the same idempotency key"):
        refund(client, payment_id, "rfd-0002-item-7", amount=2500)
    with pytest.raises(BadRequestError):
        refund(client, payment_id, "short", amount=2500)
    assert len(sim.refunds) == 1


def test_idempotency_key_still_in_flight_answers_409(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    payment_id = paid_payment_id(sim, client)
    sim.inject("POST", f"/v1/payments/{payment_id}/refund", "slow", delay=0.6)
    headers = {"X-Refund-Idempotency": "rfd-0003-item-7", "Content-Type": "application/json"}
    url = f"{sim.base_url}/v1/payments/{payment_id}/refund"

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(refund, client, payment_id, "rfd-0003-item-7", amount=1500)
        deadline = time.monotonic() + 5
        while not sim.refunds and time.monotonic() < deadline:
            time.sleep(0.01)
        retry = httpx.post(
            url, json={"amount": 1500}, headers=headers, auth=(KEY_ID, KEY_SECRET), timeout=TIMEOUT
        )
        first = slow.result(timeout=TIMEOUT)

    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    assert refund(client, payment_id, "rfd-0003-item-7", amount=1500)["id"] == first["id"]
    assert len(sim.refunds) == 1


def test_refund_beyond_captured_amount_is_refused(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    payment_id = paid_payment_id(sim, client, amount=5000)
    refund(client, payment_id, amount=3000)

    with pytest.raises(BadRequestError, match="greater than amount captured"):
        refund(client, payment_id, amount=2001)
    with pytest.raises(BadRequestError, match=r"at least INR 1\.00"):
        refund(client, payment_id, amount=99)
    assert refund(client, payment_id)["amount"] == 2000
    assert sim.payments[payment_id]["refund_status"] == "full"
    with pytest.raises(BadRequestError, match="fully refunded already"):
        refund(client, payment_id, amount=100)


def test_refund_of_uncaptured_or_unknown_payment_is_refused(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    order = create_order(client)
    failed = sim.fail_payment(order["id"])[0].json()["payload"]["payment"]["entity"]

    with pytest.raises(BadRequestError, match="has not been captured"):
        refund(client, failed["id"], amount=1000)
    with pytest.raises(BadRequestError, match="does not exist"):
        refund(client, "pay_DoesNotExist00", amount=1000)
    assert sim.refunds == {}


def test_server_error_fault_raises_server_error_without_effect(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    sim.inject("POST", "/v1/orders", "500")
    with pytest.raises(ServerError, match="The server encountered an error"):
        create_order(client)
    assert sim.orders == {}
    assert sim.faults_pending() == 0
    create_order(client)
    assert len(sim.orders) == 1


def test_html_502_fault_raises_json_decode_error(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    sim.inject("POST", "/v1/orders", "html502", times=2)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        create_order(client)
    assert sim.faults_pending() == 1
    sim.clear_faults()
    assert sim.faults_pending() == 0
    assert sim.orders == {}


def test_refusal_fault_raises_bad_request_without_effect(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    sim.inject("post", "/v1/orders", "400")
    with pytest.raises(BadRequestError, match=r"at least INR 1\.00"):
        create_order(client)
    assert sim.orders == {}


def test_slow_fault_times_out_after_the_refund_happened(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    payment_id = paid_payment_id(sim, client)
    sim.inject("POST", "/v1/payments/", "slow", delay=1.0)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        client.payment.refund(payment_id, {"amount": 1000}, timeout=0.3)

    assert time.monotonic() - started < 0.9
    assert [r["amount"] for r in sim.refunds.values()] == [1000]


def test_drop_after_acting_raises_connection_error_after_the_effect(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    sim.inject("POST", "/v1/orders", "drop_after_acting")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        create_order(client, receipt="jc_order_9")
    assert time.monotonic() - started < 2
    found = client.order.all({"receipt": "jc_order_9"}, timeout=TIMEOUT)
    assert found["count"] == 1


def test_drop_before_acting_raises_connection_error_without_effect(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    payment_id = paid_payment_id(sim, client)
    sim.inject("POST", "/v1/payments/", "drop_before_acting")
    with pytest.raises(requests.exceptions.ConnectionError):
        refund(client, payment_id, amount=1000)
    assert sim.refunds == {}
    assert refund(client, payment_id, amount=1000)["status"] == "pending"


def test_webhook_signature_matches_the_reference_vector() -> None:
    body = (
        b'{"entity":"event","account_id":"acc_TEST000000001","event":"refund.processed",'
        b'"contains":["refund","payment"],"payload":{},"created_at":1700000000}'
    )
    expected = "a805167c94e069ca662cb6c1491df9742272b99f7cb3d6dd6464f76f2c595dac"
    assert sign_webhook(body, "whsec_test") == expected
    delivery = WebhookDelivery(body, "Rp71ZiqdEWusLa", "refund.processed", "whsec_test")
    assert delivery.headers()["X-Razorpay-Signature"] == expected
    assert delivery.headers("other")["X-Razorpay-Signature"] != expected


def test_pay_emits_signed_authorized_captured_and_order_paid(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    order = create_order(client, receipt="jc_order_5")
    deliveries = sim.pay_by_receipt("jc_order_5")

    assert [d.event_type for d in deliveries] == [
        "payment.authorized",
        "payment.captured",
        "order.paid",
    ]
    for delivery in deliveries:
        signature = delivery.headers()["X-Razorpay-Signature"]
        assert client.utility.verify_webhook_signature(
            delivery.body.decode(), signature, WEBHOOK_SECRET
        )
    authorized, captured, paid = (d.json() for d in deliveries)
    assert authorized["contains"] == ["payment"]
    assert paid["contains"] == ["payment", "order"]
    assert authorized["payload"]["payment"]["entity"]["status"] == "authorized"
    assert authorized["payload"]["payment"]["entity"]["captured"] is False
    payment = captured["payload"]["payment"]["entity"]
    assert payment["status"] == "captured"
    assert payment["order_id"] == order["id"]
    assert payment["amount"] == 50000
    assert payment["method"] == "upi"
    assert payment["fee"] > 0
    assert paid["payload"]["order"]["entity"]["status"] == "paid"
    assert client.order.fetch(order["id"], timeout=TIMEOUT)["amount_due"] == 0
    fetched = client.payment.fetch(payment["id"], timeout=TIMEOUT)
    assert fetched["captured"] is True
    listed = client.order.payments(order["id"], timeout=TIMEOUT)
    assert [p["id"] for p in listed["items"]] == [payment["id"]]


def test_failed_payment_emits_payment_failed(
    sim: RazorpaySimulator, client: razorpay.Client
) -> None:
    order = create_order(client)
    (delivery,) = sim.fail_payment(order["id"])
    payment = delivery.json()["payload"]["payment"]["entity"]
    assert delivery.event_type == "payment.failed"
    assert payment["status"] == "failed"
    assert payment["error_code"] == "BAD_REQUEST_ERROR"
    assert payment["captured"] is False
    assert sim.orders[order["id"]]["status"] == "attempted"


def test_deliver_posts_body_and_headers_intact(
    sim: RazorpaySimulator, client: razorpay.Client, receiver: Receiver
) -> None:
    delivery = sim.pay(create_order(client)["id"])[2]

    assert sim.deliver(delivery, receiver.url) == 200

    (received,) = receiver.wait_for(1)
    assert received.path == "/webhooks/razorpay"
    assert received.body == delivery.body
    assert received.headers["X-Razorpay-Signature"] == sign_webhook(delivery.body, WEBHOOK_SECRET)
    assert received.headers["X-Razorpay-Event-Id"] == delivery.event_id
    assert received.headers["Request-Id"] == delivery.event_id
    assert received.headers["User-Agent"] == "Razorpay-Webhook/v1"
    assert received.headers["Content-Type"] == "application/json"


async def test_deliver_async_posts_the_same_bytes(
    sim: RazorpaySimulator, receiver: Receiver
) -> None:
    delivery = sim.event("refund.created", {"refund": {"entity": {"id": "rfnd_x"}}})
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        assert await sim.deliver_async(delivery, receiver.url, client=http) == 200
    assert await sim.deliver_async(delivery, receiver.url) == 200
    assert [r.body for r in receiver.wait_for(2)] == [delivery.body, delivery.body]


@pytest.mark.parametrize(
    ("settle", "event", "status", "refunded"),
    [
        (RazorpaySimulator.process_refund, "refund.processed", "processed", 1500),
        (RazorpaySimulator.fail_refund, "refund.failed", "failed", 0),
    ],
)
def test_settling_a_refund_emits_its_event(
    sim: RazorpaySimulator,
    client: razorpay.Client,
    settle: Callable[[RazorpaySimulator, str], list[WebhookDelivery]],
    event: str,
    status: str,
    refunded: int,
) -> None:
    payment_id = paid_payment_id(sim, client)
    refund_id = refund(client, payment_id, amount=1500)["id"]

    (delivery,) = settle(sim, refund_id)

    body = delivery.json()
    assert delivery.event_type == event == body["event"]
    assert body["contains"] == ["refund", "payment"]
    assert body["payload"]["refund"]["entity"]["status"] == status
    assert body["payload"]["payment"]["entity"]["amount_refunded"] == refunded
    assert client.refund.fetch(refund_id, timeout=TIMEOUT)["status"] == status
    assert client.refund.all({"count": 10}, timeout=TIMEOUT)["items"][0]["id"] == refund_id
    assert sim.payments[payment_id]["amount_refunded"] == refunded


def test_refunds_are_processed_and_announced_automatically(receiver: Receiver) -> None:
    auto = RazorpaySimulator(
        webhook_secret=WEBHOOK_SECRET, webhook_url=receiver.url, auto_process_refunds_after=0.2
    )
    base_url = auto.start()
    sdk = razorpay.Client(auth=(auto.key_id, auto.key_secret), base_url=base_url)
    try:
        payment_id = paid_payment_id(auto, sdk)
        refund_id = refund(sdk, payment_id, amount=2000)["id"]

        (received,) = receiver.wait_for(1)
    finally:
        sdk.session.close()
        auto.stop()

    event = json.loads(received.body)
    assert event["event"] == "refund.processed"
    assert event["payload"]["refund"]["entity"]["id"] == refund_id
    assert received.headers["X-Razorpay-Signature"] == sign_webhook(received.body, WEBHOOK_SECRET)


def test_control_api_pays_by_receipt_and_settles_refunds(
    sim: RazorpaySimulator, client: razorpay.Client, receiver: Receiver
) -> None:
    sim.webhook_url = receiver.url
    order = create_order(client, receipt="jc_order_3")

    answer = httpx.post(f"{sim.base_url}/_sim/pay", json={"receipt": "jc_order_3"}, timeout=5)

    assert answer.status_code == 200
    assert answer.json()["payment"]["order_id"] == order["id"]
    assert answer.json()["deliveries"] == [
        {"event": "payment.authorized", "status": 200},
        {"event": "payment.captured", "status": 200},
        {"event": "order.paid", "status": 200},
    ]
    assert len(receiver.wait_for(3)) == 3
    refund_id = refund(client, answer.json()["payment"]["id"], amount=1000)["id"]
    settled = httpx.post(f"{sim.base_url}/_sim/refunds/{refund_id}/fail", timeout=5)
    assert settled.json()["refund"]["status"] == "failed"
    missing = httpx.post(f"{sim.base_url}/_sim/fail", json={"receipt": "nope"}, timeout=5)
    assert missing.status_code == 404
    assert sim.requests_to("POST", "/_sim") == []
