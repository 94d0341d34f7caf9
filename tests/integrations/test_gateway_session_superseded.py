"""A payment session superseded while its Razorpay order is being created never hands that order
out: the orphan is recorded and the current session is returned."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.razorpay import RazorpayGateway
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers import payment_sessions
from tests.api.test_cancellation import cancel
from tests.helpers import Api


async def test_a_session_superseded_between_claim_and_write_does_not_get_the_order(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    for name in ("Lamp", "Rug"):
        product = await api.create_product(seller, price=20_000, stock=5, name=name)
        await api.add_to_cart(buyer, product, 1)
    razorpay.inject("POST", "/v1/orders", "500")  # checkout leaves the session without an order
    placed = (await api.checkout(buyer))["order"]
    assert placed["payment"]["razorpayOrderId"] is None
    async with services.engine.connect() as conn:
        first_session = await conn.scalar(text("SELECT id FROM payments"))

    gateway = services.gateway
    assert isinstance(gateway, RazorpayGateway)
    before, gateway._timeout = gateway._timeout, 30.0
    try:
        razorpay.inject("POST", "/v1/orders", "hold")
        opening = asyncio.create_task(
            payment_sessions.open_gateway_session(
                services.sessions, services.gateway, first_session, wait=False
            )
        )
        for _ in range(1000):  # until the claim is committed and the call is held at Razorpay
            if len(razorpay.requests_to("POST", "/v1/orders")) == 2:
                break
            await asyncio.sleep(0.01)
        assert not opening.done()
        cancelled = await cancel(api, buyer, placed["items"][0]["id"])  # supersedes the session
        assert cancelled["errors"] == []
        razorpay.release_held()
        returned = await opening
    finally:
        gateway._timeout = before

    held_order = razorpay.requests_to("POST", "/v1/orders")[1]
    orphans = [o for o in razorpay.orders.values() if o["receipt"] == str(placed["id"])]
    assert held_order.json["receipt"] == str(placed["id"])
    assert len(orphans) == 1
    assert returned.id != first_session
    assert returned.razorpay_order_id != orphans[0]["id"]
    async with services.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, razorpay_order_id FROM payments WHERE id = :id"),
                {"id": first_session},
            )
        ).one()
        recorded = await conn.scalar(
            text("SELECT detail->>'razorpay_order_id' FROM order_events WHERE kind = :k"),
            {"k": "ORPHAN_GATEWAY_ORDER"},
        )
    assert (row.status, row.razorpay_order_id) == ("SUPERSEDED", None)
    assert recorded == orphans[0]["id"]
