"""Orders for the subscription tests: placed through the API, paid and refunded by webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.helpers import Account, Api

ORDER_UPDATED = """subscription($id: ID!) { orderUpdated(orderId: $id) {
  id status total { amount }
  items { id status cancelledQuantity }
  payment { status razorpayPaymentId }
  refunds { id status amount { amount } gatewayRefundId }
  events { kind } } }"""
ITEM_UPDATED = """subscription { sellerOrderItemUpdated {
  id status cancelledQuantity refunds { status } order { id status } } }"""
CANCEL = """mutation($id: ID!, $q: Int) { cancelItem(orderItemId: $id, quantity: $q) {
  orderItem { status } refund { id status gatewayRefundId } errors { code message } } }"""


@dataclass
class Placed:
    id: str
    buyer: Account
    sellers: list[Account]
    items: list[str]  # item ids, one per seller, in the sellers' order
    rzp_order: str


async def place(api: Api, *, sellers: int = 1, quantity: int = 2) -> Placed:
    """A buyer's unpaid order with one item from each of `sellers` new sellers."""
    accounts = [await api.register("SELLER") for _ in range(sellers)]
    buyer = await api.register("USER")
    prices = [10_000 * (i + 1) for i in range(sellers)]
    for seller, price in zip(accounts, prices, strict=True):
        product = await api.create_product(seller, price=price, stock=10)
        await api.add_to_cart(buyer, product, quantity)
    placed = await api.checkout(buyer)
    assert placed["errors"] == [], placed
    order = placed["order"]
    by_price = {item["unitPrice"]["amount"]: item["id"] for item in order["items"]}
    return Placed(
        id=order["id"],
        buyer=buyer,
        sellers=accounts,
        items=[by_price[p] for p in prices],
        rzp_order=order["payment"]["razorpayOrderId"],
    )


async def deliver(
    razorpay: RazorpaySimulator, deliveries: list[Any], url: str | None = None
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for delivery in deliveries:
            assert await razorpay.deliver_async(delivery, url, client) == 200


async def cancel(api: Api, who: Account, item_id: str, quantity: int | None = None) -> Any:
    data = await api.gql(CANCEL, {"id": item_id, "q": quantity}, who.token)
    result = data["cancelItem"]
    assert result["errors"] == [], result
    return result


def order_of(data: dict[str, Any]) -> dict[str, Any]:
    order: dict[str, Any] = data["orderUpdated"]
    return order
