"""Razorpay lists at most 100 items per page (`count`, `skip`): the gateway reads every page, so a
refund past the first 100 of a payment is still found, and a listing it cannot finish is an
unknown answer, never a partial one."""

from __future__ import annotations

import uuid

import pytest

from joycart.integrations import razorpay as rzp
from joycart.integrations.razorpay import GatewayUnknown, RazorpayGateway
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers.refunds import find_ours


def gateway_for(sim: RazorpaySimulator) -> RazorpayGateway:
    return RazorpayGateway(
        key_id=sim.key_id, key_secret=sim.key_secret, base_url=sim.base_url, timeout=5.0
    )


async def paid_with_refunds(
    sim: RazorpaySimulator, gateway: RazorpayGateway, refunds: int
) -> tuple[str, list[uuid.UUID]]:
    """A captured ₹500 payment with `refunds` refunds of ₹1, oldest first (ours, by notes)."""
    order = await gateway.create_order(amount=50_000, currency="INR", receipt="r-paging", notes={})
    captured = sim.pay(order.id)[1].json()["payload"]["payment"]["entity"]["id"]
    ours = [uuid.uuid4() for _ in range(refunds)]
    for n, refund_id in enumerate(ours):
        await gateway.create_refund(
            payment_id=captured,
            amount=100,
            receipt=f"rf-{n}",
            notes={"joycart_refund_id": str(refund_id)},
            idempotency_key=f"paging-{refund_id}",
        )
    return captured, ours


async def test_a_refund_past_razorpays_first_page_of_100_is_found(
    razorpay: RazorpaySimulator,
) -> None:
    gateway = gateway_for(razorpay)
    payment_id, ours = await paid_with_refunds(razorpay, gateway, 130)
    listed = await gateway.list_refunds(payment_id)
    assert len({r.id for r in listed}) == len(listed) == 130
    # Razorpay lists newest first: the first refund made is on the second page.
    oldest = await find_ours(gateway, payment_id, ours[0])
    assert oldest is not None
    assert oldest.receipt == "rf-0"
    pages = razorpay.requests_to("GET", f"/v1/payments/{payment_id}/refunds")
    assert [r.query.get("skip") for r in pages[-2:]] == ["0", "100"]
    assert all(r.query.get("count") == "100" for r in pages)


async def test_a_listing_longer_than_the_pages_it_may_read_is_unknown_not_partial(
    razorpay: RazorpaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = gateway_for(razorpay)
    monkeypatch.setattr(rzp, "PAGE", 2)
    payment_id, ours = await paid_with_refunds(razorpay, gateway, 5)
    assert len(await gateway.list_refunds(payment_id)) == 5  # pages of 2, 2 and 1
    monkeypatch.setattr(rzp, "MAX_PAGES", 2)
    with pytest.raises(GatewayUnknown, match="not all read"):
        await gateway.list_refunds(payment_id)
    with pytest.raises(GatewayUnknown):  # so a refund's fate is never decided on half a list
        await find_ours(gateway, payment_id, ours[0])


async def test_orders_by_receipt_are_read_page_by_page(
    razorpay: RazorpaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = gateway_for(razorpay)
    monkeypatch.setattr(rzp, "PAGE", 2)
    made = [
        await gateway.create_order(amount=10_000, currency="INR", receipt="r-same", notes={})
        for _ in range(3)
    ]
    await gateway.create_order(amount=10_000, currency="INR", receipt="r-other", notes={})
    found = await gateway.find_orders_by_receipt("r-same")
    assert sorted(o.id for o in found) == sorted(o.id for o in made)
