"""Request ids on every response, /metrics access, and the counters a checkout and a webhook
move (in one process: the multi-process behaviour is in tests/multiprocess)."""

from __future__ import annotations

import dataclasses
import re
import uuid

import httpx
from prometheus_client import REGISTRY

from joycart.app import create_app
from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.helpers import Api

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def _client(services: Services, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(services), client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://joycart.test")


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_every_answer_carries_its_own_request_id(http: httpx.AsyncClient) -> None:
    answers = [
        await http.get("/healthz"),
        await http.post("/graphql", json={"query": "{ __typename }"}),
        await http.post("/graphql", json={"query": "{ nope }"}),
        await http.post("/webhooks/razorpay", content=b"{}"),
        await http.get("/no-such-route"),
        await http.post("/graphql", content=b"x" * (3 * 1024 * 1024)),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 400, 404, 413]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(HEX_ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


async def test_a_request_id_is_believed_only_from_a_trusted_proxy(services: Services) -> None:
    given = {"X-Request-Id": "edge-7f3a:req/42"}
    async with _client(services, "127.0.0.1") as proxy:  # JOYCART_TRUSTED_PROXIES's default
        assert (await proxy.get("/healthz", headers=given)).headers["x-request-id"] == (
            "edge-7f3a:req/42"
        )
        forwarded = given | {"X-Forwarded-For": "198.51.100.20"}
        answer = await proxy.get("/healthz", headers=forwarded)
        assert answer.headers["x-request-id"] == "edge-7f3a:req/42"
        odd = await proxy.get("/healthz", headers={"X-Request-Id": "has spaces and ;"})
        assert HEX_ID.match(odd.headers["x-request-id"])
    async with _client(services, "203.0.113.7") as stranger:
        answer = await stranger.get("/healthz", headers=given)
        assert HEX_ID.match(answer.headers["x-request-id"])


async def test_metrics_are_open_to_this_host_and_need_the_token_from_anywhere_else(
    services: Services,
) -> None:
    async with _client(services, "127.0.0.1") as local:
        scraped = await local.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=")
        assert "joycart_database_up 1.0" in scraped.text
        assert "joycart_http_request_duration_seconds_bucket" in scraped.text
        # Through a reverse proxy on this host the caller is not local any more.
        proxied = await local.get("/metrics", headers={"X-Forwarded-For": "198.51.100.20"})
        assert proxied.status_code == 403
    async with _client(services, "203.0.113.7") as remote:
        assert (await remote.get("/metrics")).status_code == 403

    token = "m" * 40
    guarded = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"metrics_token": token})
    )
    async with _client(guarded, "203.0.113.7") as remote:
        missing = await remote.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await remote.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
        assert wrong.status_code == 401
        right = await remote.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200
        assert "joycart_jobs_dead" in right.text


async def test_checkout_outcomes_are_counted(api: Api, razorpay: RazorpaySimulator) -> None:
    seller = await api.register("SELLER")
    product = await api.create_product(seller, stock=1)
    first, second = await api.register(), await api.register()
    before = {o: _sample("joycart_checkouts_total", outcome=o) for o in ("placed", "replayed")}
    out_before = _sample("joycart_checkouts_total", outcome="OUT_OF_STOCK")
    await api.add_to_cart(first, product)
    await api.add_to_cart(second, product)
    key = f"key-{uuid.uuid4().hex}"
    assert (await api.checkout(first, key))["errors"] == []
    assert (await api.checkout(first, key))["errors"] == []
    assert (await api.checkout(second))["errors"][0]["code"] == "OUT_OF_STOCK"
    assert _sample("joycart_checkouts_total", outcome="placed") == before["placed"] + 1
    assert _sample("joycart_checkouts_total", outcome="replayed") == before["replayed"] + 1
    assert _sample("joycart_checkouts_total", outcome="OUT_OF_STOCK") == out_before + 1


async def test_webhook_outcomes_and_lag_are_counted(
    api: Api, http: httpx.AsyncClient, razorpay: RazorpaySimulator
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register()
    await api.add_to_cart(buyer, await api.create_product(seller))
    rzp_order = (await api.checkout(buyer))["order"]["payment"]["razorpayOrderId"]
    captured = {"event": "payment.captured"}
    names = ("applied", "duplicate")
    before = {o: _sample("joycart_webhooks_received_total", outcome=o, **captured) for o in names}
    rejected = _sample("joycart_webhooks_received_total", event="other", outcome="rejected")
    lag = _sample("joycart_webhook_lag_seconds_count", **captured)

    delivery = razorpay.pay(rzp_order)[1]
    assert await razorpay.deliver_async(delivery) == 200
    assert await razorpay.deliver_async(delivery) == 200
    forged = await http.post(
        "/webhooks/razorpay", content=delivery.body, headers={"X-Razorpay-Signature": "0" * 64}
    )
    assert forged.status_code == 400

    after = {o: _sample("joycart_webhooks_received_total", outcome=o, **captured) for o in names}
    assert after == {"applied": before["applied"] + 1, "duplicate": before["duplicate"] + 1}
    assert _sample("joycart_webhooks_received_total", event="other", outcome="rejected") == (
        rejected + 1
    )
    assert _sample("joycart_webhook_lag_seconds_count", **captured) == lag + 1
