"""Who sees what, through every path: selection sets are built from the schema itself.

Three sellers share one paid order; the first seller's item is cancelled and refunded, and the
buyer paid twice, so the order also holds an automatic refund. Each viewer then reads the
order, the catalog and their own lists with one document per root that selects every field of
every type reachable from it, each type at most twice along a path (tests/schema_walk.py): a
field added later is read here too.

Those documents are far over the server's depth, token and cost limits (each list is priced at
ten entries), so they run in process on the production types and resolvers, in a schema
without those limits, with each viewer's token in the request as over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import text
from starlette.requests import Request

from joycart.bootstrap import Services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.schema import Mutation, Query
from joycart.schema.context import Context
from joycart.schema.errors import MaskInternalErrors
from joycart.worker import run_due_jobs
from tests.api.fulfilment_steps import (
    addressed_paid_order,
    approve_return,
    delivered,
    receive_return,
    request_return,
)
from tests.api.test_cancellation import PaidOrder
from tests.helpers import Account, Api, assert_invariants, make_jobs_due
from tests.schema_walk import INTROSPECTION, Walker, objects, strings

UNLIMITED = strawberry.Schema(query=Query, mutation=Mutation, extensions=[MaskInternalErrors])

ORDER_HEADS = ("order", "orders", "sellerOrderItems")


@dataclass
class Who:
    name: str
    account: Account | None
    items: set[str] = field(default_factory=set)  # order items this viewer may see
    refunds: set[str] = field(default_factory=set)
    whole: bool = False  # the buyer
    forbidden: set[str] = field(default_factory=set)  # never in what they read of an order
    emails: set[str] = field(default_factory=set)  # never anywhere: everyone else's email
    shipments: set[str] = field(default_factory=set)  # shipments and returns they may see
    returns: set[str] = field(default_factory=set)
    seen: dict[str, set[str]] = field(default_factory=dict)  # typename -> ids read
    texts: set[str] = field(default_factory=set)  # every string read
    events: list[tuple[str, datetime]] = field(default_factory=list)


@dataclass
class World:
    order: PaidOrder
    payment_ids: set[str]  # the buyer's payment identifiers at Razorpay and ours
    checkout_ids: set[str]  # those the buyer reads: the Razorpay order and payment
    refund_ids: dict[str, str]  # order item id -> its refund id
    automatic: dict[str, Any]
    product_names: dict[str, str]  # order item id -> its product name
    product_ids: dict[str, str]  # order item id -> its product id


async def _world(api: Api, razorpay: RazorpaySimulator, services: Services) -> World:
    order = await addressed_paid_order(api, razorpay)
    # The buyer pays the same session a second time: money the order does not owe.
    for delivery in razorpay.pay(order.rzp_order):
        assert await razorpay.deliver_async(delivery) == 200
    await make_jobs_due(services.engine)
    await run_due_jobs(services)  # the automatic refund is submitted to Razorpay
    async with services.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT p.receipt, p.razorpay_payment_id, c.gateway_payment_id FROM payments p "
                    "JOIN captures c ON c.payment_id = p.id ORDER BY c.owed DESC"
                )
            )
        ).all()
        automatic = (
            (
                await conn.execute(
                    text(
                        "SELECT id, gateway_refund_id FROM refunds WHERE reason = 'UNOWED_CAPTURE'"
                    )
                )
            )
            .mappings()
            .one()
        )
        items = (
            await conn.execute(
                text("SELECT id::text, product_name, product_id::text FROM order_items")
            )
        ).all()
    names: dict[str, str] = {row[0]: row[1] for row in items}
    products: dict[str, str] = {row[0]: row[2] for row in items}
    # The first session's receipt is the order id itself, which a seller may see.
    payment_ids = ({order.rzp_order} | {v for row in rows for v in row if v}) - {order.id}
    assert automatic["gateway_refund_id"], "the automatic refund reached Razorpay"
    return World(
        order=order,
        payment_ids=payment_ids,
        checkout_ids={order.rzp_order, rows[0].razorpay_payment_id},
        refund_ids={},
        automatic={"id": str(automatic["id"]), "gateway": automatic["gateway_refund_id"]},
        product_names=names,
        product_ids=products,
    )


async def _run(
    services: Services, document: str, token: str | None
) -> tuple[Any, list[dict[str, Any]]]:
    """`document` in process, as the holder of `token` would send it: (data, errors)."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": headers,
            "query_string": b"",
            "client": ("127.0.0.1", 50_000),
        }
    )
    context = Context(request=request, response=None, services=services)
    result = await UNLIMITED.execute(document, context_value=context)
    return result.data, [dict(e.formatted) for e in result.errors or []]


async def _cancel_with_every_field(
    services: Services, walker: Walker, seller: Account, item_id: str
) -> dict[str, Any]:
    """The seller cancels their item, reading the whole payload (one document: it runs once)."""
    document = walker.document(
        f'cancelItem(orderItemId: "{item_id}")', "CancelItemPayload", operation="mutation"
    )
    data, errors = await _run(services, document, seller.token)
    assert errors == [], errors
    payload: dict[str, Any] = data["cancelItem"]
    assert payload["errors"] == [], payload
    return payload


def _check(who: Who, head: str, data: Any) -> None:
    """The rules every answer obeys, whatever path reached each object."""
    own_id = who.account.id if who.account else None
    for obj in objects(data):
        kind = obj["__typename"]
        if "id" in obj and obj["id"] is not None:
            who.seen.setdefault(kind, set()).add(obj["id"])
        if kind == "User":
            if obj["id"] == own_id:
                assert who.account is not None
                assert obj["email"] == who.account.email, (who.name, head, obj)
            else:
                assert obj["email"] is None, (who.name, head, obj)
        if head not in ORDER_HEADS:
            continue
        if kind == "OrderItem":
            assert obj["id"] in who.items, (who.name, head, "another seller's item", obj)
        elif kind == "Refund":
            assert obj["id"] in who.refunds, (who.name, head, "another item's refund", obj)
        elif kind in ("Payment", "AutomaticRefund"):
            assert who.whole, (who.name, head, "the buyer's payment", obj)
        elif kind == "Shipment":
            assert obj["id"] in who.shipments, (who.name, head, "another seller's parcel", obj)
        elif kind == "Return":
            assert obj["id"] in who.returns, (who.name, head, "another item's return", obj)
        elif kind == "OrderEvent":
            who.events.append((obj["kind"], datetime.fromisoformat(obj["createdAt"])))
    read = strings(data)
    assert not read & who.emails, (who.name, head, "someone's email", read & who.emails)
    if head in ORDER_HEADS:
        assert not read & who.forbidden, (who.name, head, read & who.forbidden)
    who.texts |= read


async def _read_everything(
    services: Services, walker: Walker, who: Who, heads: dict[str, tuple[str, str]]
) -> None:
    token = who.account.token if who.account else None
    for name, (head, type_name) in heads.items():
        data, errors = await _run(services, walker.document(head, type_name), token)
        for error in errors:
            # Only a list that needs an account, asked anonymously, may refuse.
            assert who.account is None, (who.name, error)
            assert error["extensions"]["code"] == "UNAUTHENTICATED", (who.name, error)
        _check(who, name, data)


async def test_each_viewer_reads_only_their_part_through_every_path(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    world = await _world(api, razorpay, services)
    order = world.order
    walker = Walker(await api.gql(INTROSPECTION))
    item_ids = [i["id"] for i in order.items]
    sellers = order.sellers
    stranger_seller = await api.register("SELLER")
    await api.create_product(stranger_seller, name="Stranger's tea")
    stranger_buyer = await api.register("USER")

    # Seller 0 cancels their item, and Razorpay refunds it.
    cancel = await _cancel_with_every_field(services, walker, sellers[0], item_ids[0])
    refund = cancel["refund"]
    for delivery in razorpay.process_refund(refund["gatewayRefundId"]):
        assert await razorpay.deliver_async(delivery) == 200
    world.refund_ids[item_ids[0]] = refund["id"]
    # Seller 1 ships and delivers; the buyer sends one unit back, and it is refunded.
    shipment = await delivered(api, order, 1, 2)
    asked = await request_return(api, order.buyer, item_ids[1], 1, reason="the tin is dented")
    returned = asked["return"]["id"]
    assert (await approve_return(api, sellers[1], returned))["errors"] == []
    received = await receive_return(api, sellers[1], returned)
    assert received["errors"] == [], received
    world.refund_ids[item_ids[1]] = received["refund"]["id"]
    parcels = {item_ids[1]: {shipment, returned, "DLV123456789", "the tin is dented"}}

    emails = {a.email for a in (order.buyer, *sellers, stranger_seller, stranger_buyer)}
    every_item = set(item_ids)

    def seller_view(index: int) -> Who:
        own = item_ids[index]
        others = every_item - {own}
        forbidden = (
            world.payment_ids
            | {world.automatic["id"], world.automatic["gateway"]}
            | (emails - {sellers[index].email})
            | others
            | {world.product_names[i] for i in others}
            | {world.product_ids[i] for i in others}
            | {r for i, r in world.refund_ids.items() if i != own}
            | {text for i, texts in parcels.items() if i != own for text in texts}
        )
        refunds = {world.refund_ids[own]} if own in world.refund_ids else set()
        who = Who(f"seller {index}", sellers[index], {own}, refunds, forbidden=forbidden)
        if own == item_ids[1]:
            who.shipments, who.returns = {shipment}, {returned}
        return who

    viewers = [
        Who(
            "buyer",
            order.buyer,
            every_item,
            set(world.refund_ids.values()),
            whole=True,
            shipments={shipment},
            returns={returned},
        ),
        *(seller_view(i) for i in range(3)),
        Who("a seller with no item in it", stranger_seller),
        Who("another buyer", stranger_buyer),
        Who("anonymous", None),
    ]
    some_product = order.products[1]
    heads = {
        "order": (f'order(id: "{order.id}")', "Order"),
        "orders": ("orders(first: 1)", "OrderConnection"),
        "sellerOrderItems": ("sellerOrderItems(first: 5)", "OrderItemConnection"),
        "products": ("products(first: 10)", "ProductConnection"),
        "product": (f'product(id: "{some_product}")', "Product"),
        "me": ("me", "User"),
        "cart": ("cart", "Cart"),
    }
    # The walk reaches the payment and the order's lists from a seller's own items too.
    seller_docs = walker.document(*heads["sellerOrderItems"])
    for path in ("order {", "payment {", "automaticRefunds {", "events {", "refunds {"):
        assert path in seller_docs, path
    for path in ("shipments {", "returns {", "shippingAddress {"):
        assert path in seller_docs, path
    for who in viewers:
        who.emails = emails - ({who.account.email} if who.account else set())
        await _read_everything(services, walker, who, heads)
    _check(viewers[1], "sellerOrderItems", cancel)  # the mutation's payload, same rules

    buyer, *seller_views = viewers[:4]
    # The walk reads what it must: the buyer sees every item, refund and payment identifier.
    assert buyer.seen["OrderItem"] == every_item
    assert set(world.refund_ids.values()) <= buyer.seen["Refund"]
    assert world.checkout_ids <= buyer.texts
    assert buyer.seen["AutomaticRefund"] == {world.automatic["id"]}
    assert buyer.seen["Shipment"] == {shipment}
    assert buyer.seen["Return"] == {returned}
    assert order.buyer.email in buyer.texts  # through `me`: the owner reads their email
    # Each seller sees their own item, and its refund, wherever they came from.
    for index, who in enumerate(seller_views):
        assert who.seen["OrderItem"] == {item_ids[index]}, who.name
        assert who.seen.get("Refund", set()) == who.refunds, who.name
        assert who.seen.get("Shipment", set()) == who.shipments, who.name
        assert who.seen.get("Return", set()) == who.returns, who.name
        assert "Payment" not in who.seen
        assert "AutomaticRefund" not in who.seen
    # A seller's history is exactly the events about their items.
    async with services.engine.connect() as conn:
        for index, who in enumerate(seller_views):
            about = (
                await conn.execute(
                    text("SELECT kind, created_at FROM order_events WHERE order_item_id = :i"),
                    {"i": item_ids[index]},
                )
            ).all()
            assert set(who.events) == {(k, c) for k, c in about}, who.name
            assert bool(about) == (index in (0, 1))
    # The order's total, for a seller, is the value of their items.
    seller_orders = await api.gql(
        f'{{ order(id: "{order.id}") {{ total {{ amount }} payment {{ receipt }} }} }}',
        token=sellers[1].token,
    )
    assert seller_orders["order"] == {"total": {"amount": 2 * 25_000}, "payment": None}
    for stranger in viewers[4:]:
        assert "OrderItem" not in stranger.seen, stranger.name
        assert "Order" not in stranger.seen, stranger.name
    await assert_invariants(services.engine)


async def test_an_automatic_refund_reached_through_order_item_answers_null_not_an_error(
    api: Api, razorpay: RazorpaySimulator, services: Services
) -> None:
    world = await _world(api, razorpay, services)
    for delivery in razorpay.fail_refund(world.automatic["gateway"]):
        assert await razorpay.deliver_async(delivery) == 200

    response = await api.raw(
        """mutation($id: ID!) { retryRefund(refundId: $id) {
             refund { id status reason amount { amount } orderItem { id order { id } } }
             errors { code message } } }""",
        {"id": world.automatic["id"]},
        token=world.order.buyer.token,
    )

    body = response.json()
    assert "errors" not in body, body  # no INTERNAL error from an item-less refund
    payload = body["data"]["retryRefund"]
    assert payload["errors"] == []
    assert payload["refund"]["reason"] == "UNOWED_CAPTURE"
    assert payload["refund"]["orderItem"] is None
    assert payload["refund"]["id"] != world.automatic["id"]
    await assert_invariants(services.engine)
