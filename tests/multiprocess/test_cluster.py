"""Several JoyCart processes on one database, directly and through PgBouncer in transaction mode:
buyers racing for stock across two API processes, every capture webhook delivered several times
to both, and racing cancels from both while Razorpay's refund API fails now and then. The money
invariants hold and Razorpay sees exactly one order per checkout and one refund per cancelled
unit once the workers have drained the jobs."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.conftest import JWT_SECRET
from tests.helpers import CHECKOUT, Api, assert_invariants, bulk_buyers, make_jobs_due
from tests.multiprocess.conftest import Cluster

pytestmark = pytest.mark.slow

BUYERS = 60
UNITS = 20
PRICE = 12_300
DRAIN_SECONDS = 90
CANCEL = """mutation($id: ID!) { cancelItem(orderItemId: $id) {
  refund { id } errors { code } } }"""


async def _post(client: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any],
                token: str) -> dict[str, Any]:  # fmt: skip
    response = await client.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _drain_jobs(services: Services, kinds: tuple[str, ...]) -> None:
    """Wait until the worker processes have no pending job of these kinds (backoff skipped)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        await make_jobs_due(services.engine)
        async with services.engine.connect() as conn:
            pending = await conn.scalar(
                text("SELECT count(*) FROM jobs WHERE status <> 'DONE' AND kind = ANY(:k)"),
                {"k": list(kinds)},
            )
        if pending == 0:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"jobs of kinds {kinds} still pending after {DRAIN_SECONDS} s")


async def test_races_across_processes_keep_the_money_right(
    cluster: Cluster, services: Services, razorpay: RazorpaySimulator
) -> None:
    urls = [server.url for server in cluster.api]
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    async with (
        httpx.AsyncClient(timeout=60, limits=limits) as client,
        httpx.AsyncClient(base_url=urls[0], timeout=60) as first,
    ):
        seller = await Api(first).register("SELLER")
        product = (
            await _post(
                client,
                urls[1],
                """mutation($i: CreateProductInput!) { createProduct(input: $i) {
                   product { id } errors { code } } }""",
                {"i": {"name": "Tea", "description": "", "price": PRICE, "stock": UNITS}},
                seller.token,
            )
        )["createProduct"]["product"]["id"]
        buyers = await bulk_buyers(
            services.engine, BUYERS, jwt_secret=JWT_SECRET, product_id=product
        )

        # 1. 60 buyers race for 20 units, alternating between the two API processes.
        answers = await asyncio.gather(
            *(
                _post(client, url, CHECKOUT, {"key": f"race-{uuid.uuid4().hex}"}, buyer.token)
                for buyer, url in zip(buyers, itertools.cycle(urls), strict=False)
            )
        )
        placed = [a["checkout"]["order"] for a in answers if not a["checkout"]["errors"]]
        refused = Counter(e["code"] for a in answers for e in a["checkout"]["errors"])
        assert len(placed) == UNITS
        assert refused == {"OUT_OF_STOCK": BUYERS - UNITS}
        assert len(razorpay.requests_to("POST", "/v1/orders")) == UNITS
        receipts = sorted(o["receipt"] for o in razorpay.orders.values())
        assert receipts == sorted(o["payment"]["receipt"] for o in placed)

        # 2. Every capture webhook, twice to each process, all at once.
        deliveries = [d for o in placed for d in razorpay.pay(o["payment"]["razorpayOrderId"])]
        gate = asyncio.Semaphore(40)

        async def deliver(delivery: Any, url: str) -> int:
            async with gate:
                return await razorpay.deliver_async(delivery, f"{url}/webhooks/razorpay", client)

        statuses = await asyncio.gather(
            *(deliver(d, url) for d in deliveries for url in urls for _ in range(2))
        )
        assert set(statuses) <= {200, 202}, Counter(statuses)
        await _drain_jobs(services, ("apply_webhook",))
        async with services.engine.connect() as conn:
            paid = await conn.scalar(text("SELECT count(*) FROM orders WHERE status = 'PAID'"))
            captures = await conn.scalar(text("SELECT count(*) FROM captures"))
        assert (paid, captures) == (UNITS, UNITS)

        # 3. Each item cancelled twice from each process while refunds fail now and then.
        razorpay.inject("POST", "/v1/payments/", "500", times=4)
        razorpay.inject("POST", "/v1/payments/", "drop_after_acting", times=3)
        async with services.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT o.buyer_id, i.id AS item FROM orders o "
                     "JOIN order_items i ON i.order_id = o.id WHERE o.status = 'PAID'")
            )  # fmt: skip
            item_buyer = {str(r.item): str(r.buyer_id) for r in rows}
        tokens = {b.id: b.token for b in buyers}
        cancels = await asyncio.gather(
            *(
                _post(client, url, CANCEL, {"id": item}, tokens[buyer])
                for item, buyer in item_buyer.items()
                for url in urls
                for _ in range(2)
            )
        )
        made = [c["cancelItem"]["refund"] for c in cancels if c["cancelItem"]["refund"]]
        assert len(made) == UNITS
        lost = Counter(e["code"] for c in cancels for e in c["cancelItem"]["errors"])
        assert sum(lost.values()) == 3 * UNITS
        assert set(lost) <= {"INVALID_STATE", "CONFLICT"}

        # 4. Once the workers have drained the owed calls: one Razorpay refund per unit.
        await _drain_jobs(services, ("submit_refund",))
        ours = {r["id"] for r in made}
        at_razorpay = [r["notes"]["joycart_refund_id"] for r in razorpay.refunds.values()]
        assert sorted(at_razorpay) == sorted(ours)
        assert {r["amount"] for r in razorpay.refunds.values()} == {PRICE}

        # 5. Razorpay settles them; refund.processed reaches both processes.
        settled = [d for rid in razorpay.refunds for d in razorpay.process_refund(rid)]
        statuses = await asyncio.gather(
            *(deliver(d, url) for d in settled for url in urls for _ in range(2))
        )
        assert set(statuses) <= {200, 202}, Counter(statuses)
        await _drain_jobs(services, ("apply_webhook",))
        async with services.engine.connect() as conn:
            refunded = await conn.scalar(
                text("SELECT count(*) FROM refunds WHERE status = 'REFUNDED'")
            )
        assert refunded == UNITS
    for process in cluster.everyone:
        assert process.proc.poll() is None, f"{process.name} died:\n{process.log_text()[-3000:]}"
    await assert_invariants(services.engine)
