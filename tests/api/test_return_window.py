"""The return window, with an injected clock: the operations take `now`, and the GraphQL layer
passes `Services.clock`, which these tests set. Nobody sleeps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from joycart.bootstrap import Services
from joycart.config import Settings
from joycart.errors import InvalidState
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import User
from joycart.resolvers import fulfilment, returns
from tests.api.fulfilment_steps import addressed_paid_order, deliver, request_return, ship
from tests.helpers import Api, assert_invariants

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
WINDOW = timedelta(days=7)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(services: Services, monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(T0)
    monkeypatch.setattr(services, "clock", fake)  # undone after the test
    return fake


async def test_a_return_inside_the_window_works_and_one_outside_is_refused_over_http(
    api: Api, razorpay: RazorpaySimulator, services: Services, clock: Clock
) -> None:
    assert services.settings.return_window_days == 7  # the default
    order = await addressed_paid_order(api, razorpay, quantities=(2, 2, 1))
    shipments = []
    for index in (0, 1):
        shipped = await ship(api, order.sellers[index], [(order.items[index]["id"], 2)])
        shipments.append(shipped["shipment"]["id"])
    clock.now = T0 + timedelta(days=1)  # both arrive on day 1
    for index, shipment_id in zip((0, 1), shipments, strict=True):
        arrived = await deliver(api, order.sellers[index], shipment_id)
        assert arrived["shipment"]["deliveredAt"].startswith("2026-12-02T10:00:00")

    clock.now = T0 + timedelta(days=8) - timedelta(seconds=1)  # the window's last second
    inside = await request_return(api, order.buyer, order.items[0]["id"], 1)
    assert inside["errors"] == []
    assert inside["return"]["status"] == "REQUESTED"

    clock.now = T0 + timedelta(days=8, seconds=1)  # a second after it closed
    outside = await request_return(api, order.buyer, order.items[1]["id"], 1)
    [error] = outside["errors"]
    assert (error["code"], error["field"]) == ("INVALID_STATE", "quantity")
    assert "return window is 7 days" in error["message"]
    late_again = await request_return(api, order.buyer, order.items[0]["id"], 1)
    assert [e["code"] for e in late_again["errors"]] == ["INVALID_STATE"]
    await assert_invariants(services.engine)


async def test_units_count_against_the_window_of_their_own_delivery(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    """Two parcels of one item, delivered five days apart: after the first one's window closes,
    only the second one's units may still go back; the operations take `now` themselves."""
    order = await addressed_paid_order(api, razorpay, quantities=(1, 3, 1))
    item_id = order.items[1]["id"]
    async with services.sessions() as session, session.begin():
        seller = await session.get_one(User, uuid.UUID(order.sellers[1].id))
        early = await fulfilment.create_shipment(
            session,
            seller=seller,
            lines=[fulfilment.LineRequest(item_id, 2)],
            carrier="India Post",
            tracking_number="EE123456789IN",
            now=T0,
        )
        await fulfilment.mark_shipment_delivered(
            session, seller=seller, shipment_id=str(early.shipment.id), now=T0
        )
        late = await fulfilment.create_shipment(
            session,
            seller=seller,
            lines=[fulfilment.LineRequest(item_id, 1)],
            carrier="India Post",
            tracking_number="EE123456790IN",
            now=T0 + timedelta(days=4),
        )
        await fulfilment.mark_shipment_delivered(
            session, seller=seller, shipment_id=str(late.shipment.id), now=T0 + timedelta(days=5)
        )

    async def ask(units: int, at: datetime) -> returns.ReturnResult:
        async with services.sessions() as session, session.begin():
            buyer = await session.get_one(User, uuid.UUID(order.buyer.id))
            return await returns.request_return(
                session,
                buyer=buyer,
                order_item_id=item_id,
                quantity=units,
                reason="wrong size",
                now=at,
                window=WINDOW,
            )

    day_9 = T0 + timedelta(days=9)  # the first parcel's window closed, the second's is open
    with pytest.raises(InvalidState, match="only 1 unit"):
        await ask(2, day_9)
    assert (await ask(1, day_9)).ret.quantity == 1
    with pytest.raises(InvalidState, match="has closed"):
        await ask(1, T0 + timedelta(days=13))
    await assert_invariants(services.engine)


def test_the_window_is_read_from_joycart_return_window_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOYCART_RETURN_WINDOW_DAYS", "14")
    assert Settings(_env_file=None).return_window_days == 14  # type: ignore[call-arg]
    monkeypatch.setenv("JOYCART_RETURN_WINDOW_DAYS", "0")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("JOYCART_RETURN_WINDOW_DAYS")
    assert Settings(_env_file=None).return_window_days == 7  # type: ignore[call-arg]
