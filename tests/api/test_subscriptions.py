"""Subscriptions over WebSocket on one process: what is sent, to whom, and only after a commit."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from joycart.bootstrap import Services
from joycart.db import transaction
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.models import Order, OrderStatus
from joycart.realtime.hub import Hub
from joycart.realtime.listener import asyncpg_dsn
from joycart.realtime.notices import CHANNEL, parse
from joycart.resolvers import states
from joycart.security import issue_access_token
from tests.conftest import JWT_SECRET
from tests.helpers import Api, assert_invariants
from tests.realtime import ITEM_UPDATED, ORDER_UPDATED, cancel, deliver, order_of, place
from tests.ws import GqlSocket, bearer, eventually


@pytest.fixture
def hub(services: Services) -> Iterator[Hub]:
    """The process's hub; a test may change its limits or clock, restored afterwards."""
    hub = services.realtime
    limits, clock = hub.limits, hub.clock
    yield hub
    hub.limits, hub.clock = limits, clock


async def test_the_first_message_is_the_order_as_it_stands_then_each_committed_change(
    api: Api, server: str, razorpay: RazorpaySimulator, services: Services
) -> None:
    order = await place(api)
    async with GqlSocket.connect(server, bearer(order.buyer.token)) as sock:
        op = await sock.subscribe(ORDER_UPDATED, {"id": order.id})
        first = order_of(await sock.data(op))
        assert first["status"] == "PENDING_PAYMENT"
        assert first["payment"]["status"] == "CREATED"

        await deliver(razorpay, razorpay.pay(order.rzp_order))
        paid = order_of((await sock.until(op, lambda d: order_of(d)["status"] == "PAID"))[-1])
        assert paid["payment"]["status"] == "CAPTURED"

        # A client that (re)connects now gets the order as it stands first.
        async with GqlSocket.connect(server, {"accessToken": order.buyer.token}) as again:
            late = await again.subscribe(ORDER_UPDATED, {"id": order.id})
            assert order_of(await again.data(late))["status"] == "PAID"

        result = await cancel(api, order.buyer, order.items[0], 1)
        changed = order_of(
            (
                await sock.until(
                    op, lambda d: [r["status"] for r in order_of(d)["refunds"]] == ["INITIATED"]
                )
            )[-1]
        )
        assert changed["status"] == "PARTIALLY_CANCELLED"
        assert changed["items"][0]["cancelledQuantity"] == 1
        assert changed["refunds"][0]["amount"]["amount"] == 10_000

        await deliver(razorpay, razorpay.process_refund(result["refund"]["gatewayRefundId"]))
        await sock.until(
            op, lambda d: [r["status"] for r in order_of(d)["refunds"]] == ["REFUNDED"]
        )
    await assert_invariants(services.engine)


async def test_another_buyer_a_seller_of_nothing_in_it_and_an_anonymous_socket_learn_nothing(
    api: Api, server: str, razorpay: RazorpaySimulator, hub: Hub
) -> None:
    order = await place(api)
    other_buyer = await api.register("USER")
    stranger = await api.register("SELLER")
    await api.create_product(stranger)  # a seller, of nothing in this order
    not_found: dict[str, object] = {
        "message": "No order with that ID.",
        "extensions": {"code": "NOT_FOUND"},
    }
    unauthenticated: dict[str, object] = {
        "message": "Sign in to do this.",
        "extensions": {"code": "UNAUTHENTICATED"},
    }

    async with (
        GqlSocket.connect(server, bearer(order.buyer.token)) as buyer,
        GqlSocket.connect(server, bearer(order.sellers[0].token)) as seller,
        GqlSocket.connect(server, bearer(other_buyer.token)) as intruder,
        GqlSocket.connect(server, bearer(stranger.token)) as other_seller,
        GqlSocket.connect(server, {}) as anonymous,
    ):
        watched = await buyer.subscribe(ORDER_UPDATED, {"id": order.id})
        await buyer.data(watched)
        sells = await seller.subscribe(ITEM_UPDATED)
        stranger_items = await other_seller.subscribe(ITEM_UPDATED)
        refused: list[tuple[GqlSocket, str, dict[str, object]]] = []
        for sock, expected in (
            (intruder, not_found),
            (other_seller, not_found),
            (anonymous, unauthenticated),
        ):
            op = await sock.subscribe(ORDER_UPDATED, {"id": order.id})
            refused.append((sock, op, expected))
        refused.append((anonymous, await anonymous.subscribe(ITEM_UPDATED), unauthenticated))
        for sock, op, expected in refused:
            assert await sock.next() == {
                "id": op,
                "type": "next",
                "payload": {"data": None, "errors": [expected]},
            }
            assert await sock.next() == {"id": op, "type": "complete"}
        # The same answer as for an order that does not exist: nothing tells them apart.
        ghost = await intruder.subscribe(ORDER_UPDATED, {"id": str(uuid.uuid4())})
        assert (await intruder.next())["payload"] == {"data": None, "errors": [not_found]}
        assert await intruder.next() == {"id": ghost, "type": "complete"}
        # Watches: the buyer's order and the sellers' items; none for a refused subscription.
        await eventually(lambda: hub.watches(uuid.UUID(stranger.id)) == 1)
        await eventually(lambda: hub.watches(uuid.UUID(order.sellers[0].id)) == 1)
        assert hub.watches(uuid.UUID(order.id)) == 1
        assert hub.watches(uuid.UUID(other_buyer.id)) == 0

        await deliver(razorpay, razorpay.pay(order.rzp_order))
        await cancel(api, order.buyer, order.items[0], 1)
        await buyer.until(watched, lambda d: order_of(d)["status"] == "PARTIALLY_CANCELLED")
        item = await seller.data(sells)
        assert item["sellerOrderItemUpdated"]["id"] == order.items[0]

        for sock in (intruder, other_seller, anonymous):
            assert await sock.barrier() == []  # nothing else arrived, not even a `complete`
    assert stranger_items  # subscribed, and never told anything (checked by the barrier)


async def test_a_bad_or_expired_token_at_connection_init_closes_with_4401(
    api: Api, server: str
) -> None:
    buyer = await api.register("USER")
    uid = uuid.UUID(buyer.id)
    expired = issue_access_token(JWT_SECRET, uid, now=datetime.now(UTC) - timedelta(minutes=16))
    forged = issue_access_token("another-secret-" + "y" * 40, uid)
    payloads: list[Mapping[str, object]] = [
        bearer("not-a-token"),
        bearer(expired),
        bearer(forged),
        {"accessToken": expired},
        {"Authorization": f"Basic {buyer.token}"},
    ]
    for payload in payloads:
        async with GqlSocket.connect(server) as sock:
            await sock.init(payload)
            code, _ = await sock.closed()
            assert code == 4401, payload


async def test_the_socket_closes_with_4401_when_its_token_expires(
    api: Api, server: str, hub: Hub
) -> None:
    order = await place(api)
    shift = timedelta(0)
    hub.clock = lambda: datetime.now(UTC) + shift
    hub.limits = replace(hub.limits, auth_recheck_seconds=0.05)
    account = f"user:{order.buyer.id}"
    init: Mapping[str, object] = {"headers": {"Authorization": f"Bearer {order.buyer.token}"}}
    async with GqlSocket.connect(server, init) as sock:
        op = await sock.subscribe(ORDER_UPDATED, {"id": order.id})
        assert order_of(await sock.data(op))["status"] == "PENDING_PAYMENT"
        assert hub.connections_of(account) == 1
        shift = timedelta(minutes=15)  # the clock reaches the token's `exp`
        code, reason = await sock.closed()
    assert code == 4401
    assert "expired" in reason
    assert hub.connections_of(account) == 0
    assert hub.watches() == 0


async def test_a_socket_closes_with_4401_once_its_sign_in_is_no_longer_valid(
    api: Api, server: str, services: Services, hub: Hub
) -> None:
    seller = await api.register("SELLER")
    hub.limits = replace(hub.limits, auth_recheck_seconds=0.05)
    async with GqlSocket.connect(server, bearer(seller.token)) as sock:
        await sock.subscribe(ITEM_UPDATED)
        await eventually(lambda: hub.watches(uuid.UUID(seller.id)) == 1)
        async with services.engine.begin() as conn:
            await conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": seller.id})
        code, _ = await sock.closed()
    assert code == 4401


async def test_a_rolled_back_change_sends_nothing_and_the_committed_one_arrives_alone(
    api: Api, server: str, services: Services
) -> None:
    order = await place(api)
    oid = uuid.UUID(order.id)
    notices: asyncio.Queue[str] = asyncio.Queue()
    own = await asyncpg.connect(asyncpg_dsn(_url(services)))
    try:
        await own.add_listener(CHANNEL, lambda *args: notices.put_nowait(args[-1]))
        async with GqlSocket.connect(server, bearer(order.buyer.token)) as sock:
            op = await sock.subscribe(ORDER_UPDATED, {"id": order.id})
            before = order_of(await sock.data(op))

            async with services.sessions() as session:
                tx = await session.begin()
                row = await session.get_one(Order, oid, with_for_update=True)
                states.move(
                    session, row, row, OrderStatus.CANCELLED, kind="ORDER_CANCELLED", actor="t"
                )
                states.record(session, row, "ROLLED_BACK_NOTE", actor="test")
                await session.flush()  # the event rows exist: the trigger has run
                await tx.rollback()

            async with transaction(services.sessions) as session:
                row = await session.get_one(Order, oid, with_for_update=True)
                committed = states.record(session, row, "COMMITTED_NOTE", actor="test")
                await session.flush()
                committed_id = committed.id

            after = order_of(await sock.data(op))
            assert [e["kind"] for e in after["events"]] == [
                *(e["kind"] for e in before["events"]),
                "COMMITTED_NOTE",
            ]
            assert after["status"] == "PENDING_PAYMENT"
            assert await sock.barrier() == []
        # NOTIFY order is commit order: had the rolled-back change notified, it would come first.
        first = parse(await asyncio.wait_for(notices.get(), 30))
        assert first is not None
        assert first.event_id == committed_id
        assert notices.empty()
    finally:
        await own.close()
    await assert_invariants(services.engine)


def _url(services: Services) -> str:
    return services.engine.url.render_as_string(hide_password=False)


async def test_a_seller_is_told_about_their_own_items_only(api: Api, server: str, hub: Hub) -> None:
    order = await place(api, sellers=2)
    first, second = order.sellers
    stranger = await api.register("SELLER")
    async with (
        GqlSocket.connect(server, bearer(first.token)) as a,
        GqlSocket.connect(server, bearer(second.token)) as b,
        GqlSocket.connect(server, bearer(stranger.token)) as c,
    ):
        ops = [await sock.subscribe(ITEM_UPDATED) for sock in (a, b, c)]
        for account in (first, second, stranger):
            await eventually(lambda: hub.watches(uuid.UUID(account.id)) == 1)  # noqa: B023
        for sock in (a, b, c):
            assert await sock.barrier() == []  # no catch-up: items come when they change

        # An unpaid order: cancelling the first seller's item renews the buyer's payment
        # session, which is no seller's business.
        await cancel(api, order.buyer, order.items[0])
        item = (await a.data(ops[0]))["sellerOrderItemUpdated"]
        assert (item["id"], item["status"]) == (order.items[0], "CANCELLED")
        assert await b.barrier() == []
        assert await c.barrier() == []


async def test_an_order_status_change_reaches_each_seller_with_their_item(
    api: Api, server: str, razorpay: RazorpaySimulator, hub: Hub
) -> None:
    order = await place(api, sellers=2)
    async with (
        GqlSocket.connect(server, bearer(order.sellers[0].token)) as a,
        GqlSocket.connect(server, bearer(order.sellers[1].token)) as b,
    ):
        op_a, op_b = await a.subscribe(ITEM_UPDATED), await b.subscribe(ITEM_UPDATED)
        for seller in order.sellers:
            await eventually(lambda: hub.watches(uuid.UUID(seller.id)) == 1)  # noqa: B023
        await deliver(razorpay, razorpay.pay(order.rzp_order))
        for sock, op, item_id in ((a, op_a, order.items[0]), (b, op_b, order.items[1])):
            seen = await sock.until(
                op, lambda d: d["sellerOrderItemUpdated"]["order"]["status"] == "PAID"
            )
            assert {d["sellerOrderItemUpdated"]["id"] for d in seen} == {item_id}


async def test_only_subscriptions_go_over_the_socket_and_each_socket_has_a_cap(
    api: Api, server: str, hub: Hub
) -> None:
    seller = await api.register("SELLER")
    async with GqlSocket.connect(server, bearer(seller.token)) as sock:
        for query in (
            "{ me { id } }",
            'mutation { logout(refreshToken: "x") { errors { code } } }',
        ):
            op = await sock.subscribe(query)
            refused = await sock.next()
            assert refused["id"] == op
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "INVALID_INPUT"
        for _ in range(hub.limits.max_subscriptions):
            await sock.subscribe(ITEM_UPDATED)
        assert await sock.barrier() == []
        op = await sock.subscribe(ITEM_UPDATED)
        over = await sock.next()
        assert over["id"] == op
        assert over["type"] == "error"
        assert over["payload"][0]["message"] == "Subscription limit reached"


async def test_an_account_holds_at_most_so_many_sockets_per_process(
    api: Api, server: str, hub: Hub
) -> None:
    buyer, other = await api.register("USER"), await api.register("USER")
    account = f"user:{buyer.id}"
    hub.limits = replace(hub.limits, max_connections_per_user=3)
    async with (
        GqlSocket.connect(server, bearer(buyer.token)),
        GqlSocket.connect(server, bearer(buyer.token)),
    ):
        async with GqlSocket.connect(server, bearer(buyer.token)):
            async with GqlSocket.connect(server) as fourth:
                await fourth.init(bearer(buyer.token))
                code, _ = await fourth.closed()
                assert code == 4429
            async with GqlSocket.connect(server, bearer(other.token)) as theirs:
                assert await theirs.barrier() == []  # another account is not affected
        await eventually(lambda: hub.connections_of(account) == 2)
        async with GqlSocket.connect(server, bearer(buyer.token)) as freed:  # one was closed
            assert await freed.barrier() == []
    await eventually(lambda: hub.connections_of(account) == 0)


async def test_the_server_pings_a_quiet_socket(api: Api, server: str, hub: Hub) -> None:
    buyer = await api.register("USER")
    hub.limits = replace(hub.limits, keepalive_seconds=0.05)
    async with GqlSocket.connect(server, bearer(buyer.token)) as sock:
        ping = await asyncio.wait_for(sock.ws.recv(), 30)
        assert ping == '{"type":"ping"}'
        await sock.send({"type": "pong"})


async def _note(services: Services, order_id: uuid.UUID, actor: str, count: int = 1) -> None:
    async with transaction(services.sessions) as session:
        row = await session.get_one(Order, order_id, with_for_update=True)
        for _ in range(count):
            states.record(session, row, "NOTE", actor=actor)


async def test_a_client_that_stops_reading_is_dropped_and_its_state_freed(
    api: Api, server: str, services: Services, hub: Hub
) -> None:
    order = await place(api)
    oid = uuid.UUID(order.id)
    account = f"user:{order.buyer.id}"
    hub.limits = replace(hub.limits, send_timeout_seconds=0.5, queue_size=4)
    # Every update re-sends a long history ten times over (~0.5 MB): a few of them outgrow every
    # buffer between the server and a client that takes none of them.
    await _note(services, oid, "x" * 120, count=250)
    fields = " ".join(f"h{i}: events {{ kind actor fromStatus toStatus }}" for i in range(10))
    query = f"subscription($id: ID!) {{ orderUpdated(orderId: $id) {{ {fields} }} }}"
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and no compression, below
    raw.connect(("127.0.0.1", int(server.rsplit(":", 1)[1])))
    async with GqlSocket.connect(
        server, bearer(order.buyer.token), sock=raw, max_queue=1, compression=None
    ) as sock:
        await sock.subscribe(query, {"id": order.id})
        await eventually(lambda: hub.watches(oid) == 1)
        for _ in range(1000):  # this client reads nothing from here on
            if hub.connections_of(account) == 0:
                break
            await _note(services, oid, "x" * 120)
        assert hub.connections_of(account) == 0, "a client that reads nothing was kept"
        assert hub.watches(oid) == 0
        # Once it reads again: what was buffered, then the close (or the connection just ends,
        # when the close frame could not get past the unread data).
        code, _ = await sock.closed()
        assert code in (1013, None)
    await assert_invariants(services.engine)


async def test_after_the_listen_connection_is_lost_every_subscriber_catches_up(
    api: Api, server: str, services: Services, razorpay: RazorpaySimulator, hub: Hub
) -> None:
    order = await place(api)
    seller = order.sellers[0]
    async with (
        GqlSocket.connect(server, bearer(order.buyer.token)) as buyer,
        GqlSocket.connect(server, bearer(seller.token)) as sells,
    ):
        watched = await buyer.subscribe(ORDER_UPDATED, {"id": order.id})
        await buyer.data(watched)
        items = await sells.subscribe(ITEM_UPDATED)
        await eventually(lambda: hub.watches(uuid.UUID(seller.id)) == 1)
        listener = hub.listener
        assert listener is not None
        connects, dsn = listener.connects, listener.dsn
        listener.dsn = "postgresql://nobody@127.0.0.1:1/nothing"  # it cannot come back yet
        async with services.engine.begin() as conn:
            ended = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'joycart-listen' AND datname = current_database()"
                )
            )
        assert ended == 1
        await eventually(lambda: not hub.listening)

        # Committed while nobody here listens: its NOTIFY is lost to this process.
        await cancel(api, order.buyer, order.items[0], 1)
        listener.dsn = dsn
        await buyer.until(watched, lambda d: order_of(d)["items"][0]["cancelledQuantity"] == 1)
        item = (await sells.data(items))["sellerOrderItemUpdated"]
        assert (item["id"], item["cancelledQuantity"]) == (order.items[0], 1)
        assert listener.connects == connects + 1

        # And it listens again.
        renewed = await api.gql(
            "query($id: ID!) { order(id: $id) { payment { razorpayOrderId } } }",
            {"id": order.id},
            order.buyer.token,
        )
        await deliver(razorpay, razorpay.pay(renewed["order"]["payment"]["razorpayOrderId"]))
        await buyer.until(watched, lambda d: order_of(d)["status"] == "PAID")
    await assert_invariants(services.engine)


async def test_a_page_on_an_origin_cors_allows_may_open_a_socket_and_another_may_not(
    api: Api, server: str
) -> None:
    buyer = await api.register("USER")
    async with GqlSocket.connect(
        server, bearer(buyer.token), origin=Origin("http://localhost:5173")
    ) as sock:
        assert await sock.barrier() == []
    with pytest.raises(InvalidStatus) as refused:
        async with GqlSocket.connect(server, origin=Origin("https://evil.example")):
            pass
    assert refused.value.response.status_code == 403


async def test_a_subscription_sent_over_http_is_refused_plainly(api: Api) -> None:
    seller = await api.register("SELLER")
    response = await api.raw("subscription { sellerOrderItemUpdated { id } }", token=seller.token)
    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Subscriptions are served over WebSocket (graphql-transport-ws) at "
                "/graphql.",
                "extensions": {"code": "INVALID_INPUT"},
            }
        ],
    }
