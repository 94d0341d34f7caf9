"""The README's walk past payment, over HTTP: address, checkout with it, the seller ships, the
parcel arrives, the buyer returns a unit, the seller approves and receives it, and the refund
settles when Razorpay's signed `refund.processed` arrives."""

from __future__ import annotations

from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.api.fulfilment_steps import (
    ADDRESS,
    CHECKOUT_TO,
    ORDER_FULFILMENT,
    add_address,
    approve_return,
    deliver,
    receive_return,
    request_return,
    ship,
)
from tests.helpers import Api, assert_invariants


async def test_address_checkout_ship_deliver_return_and_the_refund_settles(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register("USER")
    tea = await api.create_product(seller, price=45_000, stock=20, name="Darjeeling")

    # 1. The buyer's address, then checkout with it.
    added = await add_address(api, buyer, phone="+91-98765-43210")
    assert added["errors"] == []
    address = added["address"]
    assert (address["phone"], address["stateName"], address["isDefault"]) == (
        "+919876543210",
        "Karnataka",
        True,
    )
    await api.add_to_cart(buyer, tea, 3)
    placed = (
        await api.gql(CHECKOUT_TO, {"key": "walk-0001-key", "address": address["id"]}, buyer.token)
    )["checkout"]
    assert placed["errors"] == []
    order = placed["order"]
    assert order["shippingAddress"]["pinCode"] == ADDRESS["pinCode"]
    assert order["shippingAddress"]["phone"] == "+919876543210"
    item_id = order["items"][0]["id"]
    for delivery in razorpay.pay(order["payment"]["razorpayOrderId"]):
        assert await razorpay.deliver_async(delivery) == 200

    # 2. The seller ships two of the three units, then all of the rest.
    first = await ship(api, seller, [(item_id, 2)], tracking="DLV0001")
    assert first["errors"] == []
    assert first["shipment"]["items"][0]["orderItem"]["status"] == "PARTIALLY_SHIPPED"
    second = await ship(api, seller, [(item_id, 1)], tracking="DLV0002")
    assert second["shipment"]["items"][0]["orderItem"]["status"] == "SHIPPED"
    seen = (await api.gql(ORDER_FULFILMENT, {"id": order["id"]}, buyer.token))["order"]
    assert seen["status"] == "SHIPPED"
    assert [(s["carrier"], s["trackingNumber"]) for s in seen["shipments"]] == [
        ("Delhivery", "DLV0001"),
        ("Delhivery", "DLV0002"),
    ]

    # 3. Both parcels arrive.
    assert (await deliver(api, seller, first["shipment"]["id"]))["errors"] == []
    arrived = await deliver(api, seller, second["shipment"]["id"])
    assert arrived["shipment"]["status"] == "DELIVERED"
    assert arrived["shipment"]["deliveredAt"] is not None
    assert arrived["shipment"]["items"][0]["orderItem"]["status"] == "DELIVERED"

    # 4. The buyer returns one unit; the seller approves, then receives it and restocks it.
    asked = await request_return(api, buyer, item_id, 1, "the tin arrived dented")
    assert asked["errors"] == []
    return_id = asked["return"]["id"]
    assert asked["return"]["status"] == "REQUESTED"
    assert asked["return"]["orderItem"]["status"] == "RETURN_REQUESTED"
    assert (await approve_return(api, seller, return_id))["return"]["status"] == "APPROVED"
    stock_before = await _stock(services, tea)
    received = await receive_return(api, seller, return_id, restock=True)
    assert received["errors"] == []
    assert received["return"]["status"] == "RECEIVED"
    assert received["return"]["restocked"] is True
    refund = received["refund"]
    assert (refund["status"], refund["amount"]["amount"], refund["quantity"]) == (
        "INITIATED",
        45_000,
        1,
    )
    assert refund["reason"] == "RETURN"
    assert refund["gatewayRefundId"] in razorpay.refunds
    assert await _stock(services, tea) == stock_before + 1
    calls = razorpay.requests_to("POST", "/v1/payments/")
    assert [c.json["amount"] for c in calls] == [45_000]
    assert calls[0].headers["x-refund-idempotency"] == (
        f"joycart-refund-{refund['id'].replace('-', '')}"
    )

    # 5. Razorpay's signed webhook settles the refund; nothing else does.
    seen = (await api.gql(ORDER_FULFILMENT, {"id": order["id"]}, buyer.token))["order"]
    assert [r["status"] for r in seen["refunds"]] == ["INITIATED"]
    for delivery in razorpay.process_refund(refund["gatewayRefundId"]):
        assert await razorpay.deliver_async(delivery) == 200
    seen = (await api.gql(ORDER_FULFILMENT, {"id": order["id"]}, buyer.token))["order"]
    assert seen["status"] == "PARTIALLY_RETURNED"
    assert seen["items"][0]["status"] == "PARTIALLY_RETURNED"
    assert (seen["items"][0]["deliveredQuantity"], seen["items"][0]["returnedQuantity"]) == (3, 1)
    assert [(r["status"], r["reason"]) for r in seen["refunds"]] == [("REFUNDED", "RETURN")]
    assert seen["returns"][0]["refund"] == {"status": "REFUNDED"}
    kinds = [e["kind"] for e in seen["events"]]
    for kind in (
        "ORDER_PLACED",
        "ORDER_PAID",
        "SHIPMENT_CREATED",
        "ORDER_PARTIALLY_SHIPPED",
        "ORDER_SHIPPED",
        "SHIPMENT_DELIVERED",
        "ORDER_DELIVERED",
        "RETURN_REQUESTED",
        "RETURN_APPROVED",
        "RETURN_RECEIVED",
        "REFUND_INITIATED",
        "REFUND_PROCESSED",
        "ORDER_PARTIALLY_RETURNED",
    ):
        assert kind in kinds, (kind, kinds)
    # A cancel after shipping is refused and points to returns.
    late = await api.gql(
        "mutation($id: ID!) { cancelItem(orderItemId: $id) { errors { code message } } }",
        {"id": item_id},
        buyer.token,
    )
    [error] = late["cancelItem"]["errors"]
    assert error["code"] == "INVALID_STATE"
    assert "requestReturn" in error["message"]
    async with services.engine.connect() as conn:
        ledger = await conn.scalar(
            text("SELECT count(*) FROM stock_ledger WHERE reason = 'RETURN' AND delta = 1")
        )
    assert ledger == 1
    await assert_invariants(services.engine)


async def _stock(services: Services, product_id: str) -> int:
    async with services.engine.connect() as conn:
        return int(
            await conn.scalar(text("SELECT stock FROM products WHERE id = :id"), {"id": product_id})
        )
