"""The catalog over HTTP: the seller's whole flow, validation, who may change what, and the SQL
cost of browsing."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from joycart.bootstrap import Services
from joycart.models.catalog import MAX_PRICE, MAX_STOCK
from tests.helpers import Account, Api

PRODUCT_FIELDS = "id name description price { amount currency } stock seller { id }"
CREATE = f"""mutation($input: CreateProductInput!) {{ createProduct(input: $input) {{
    product {{ {PRODUCT_FIELDS} }} errors {{ code message field }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: UpdateProductInput!) {{
    updateProduct(id: $id, input: $input) {{
    product {{ {PRODUCT_FIELDS} }} errors {{ code message field }} }} }}"""
DELETE = (
    """mutation($id: ID!) { deleteProduct(id: $id) { deletedId errors { code message field } } }"""
)
ADJUST = """mutation($p: ID!, $d: Int!) { adjustStock(productId: $p, delta: $d) {
    product { id stock } errors { code message field } } }"""
REMOVE_IMAGE = """mutation($i: ID!) { removeProductImage(imageId: $i) {
    product { id } errors { code message field } } }"""
TICKET = """mutation($p: ID!) { createImageUploadTicket(productId: $p) {
    ticket { signature } errors { code message field } } }"""
ATTACH = """mutation($p: ID!, $input: AttachUploadedImageInput!) {
    attachUploadedImage(productId: $p, input: $input) { product { id } errors { code field } } }"""
PRODUCTS = """query($first: Int, $after: String, $search: String, $sellerId: ID) {
    products(first: $first, after: $after, search: $search, sellerId: $sellerId) {
        edges { cursor node { id name } } pageInfo { hasNextPage endCursor } } }"""
PRODUCT = "query($id: ID!) { product(id: $id) { id name stock } }"

TABLES = ("products", "stock_ledger", "product_images", "cart_items", "jobs")


async def snapshot(services: Services) -> dict[str, list[str]]:
    """Every row of the catalog's tables, as text: equal snapshots mean nothing changed."""
    found: dict[str, list[str]] = {}
    async with services.engine.connect() as conn:
        for table in TABLES:
            query = text(f"SELECT t::text FROM {table} t ORDER BY 1")  # noqa: S608 - from TABLES
            found[table] = list((await conn.scalars(query)).all())
    return found


def errors_of(data: dict[str, Any]) -> list[tuple[str, str | None]]:
    [payload] = data.values()
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def ledger_sum(services: Services, product_id: str) -> int:
    async with services.engine.connect() as conn:
        total = await conn.scalar(
            text("SELECT COALESCE(SUM(delta), 0) FROM stock_ledger WHERE product_id = :p"),
            {"p": product_id},
        )
    return int(total)


def product_input(**override: Any) -> dict[str, Any]:
    return {
        "name": "Masala Chai",
        "description": "Loose leaf",
        "price": 25_000,
        "stock": 10,
        **override,
    }


async def test_seller_manages_a_product_from_listing_to_deletion(
    api: Api, services: Services
) -> None:
    seller = await api.register("SELLER")
    created = (await api.gql(CREATE, {"input": product_input()}, seller.token))["createProduct"]
    assert created["errors"] == []
    chai = created["product"]
    assert chai["price"] == {"amount": 25_000, "currency": "INR"}
    assert (chai["stock"], chai["seller"]["id"]) == (10, seller.id)
    green = await api.create_product(seller, name="Green Tea")
    beans = await api.create_product(seller, name="Coffee Beans")

    updated = await api.gql(
        UPDATE,
        {"id": chai["id"], "input": {"price": 30_000, "name": "Masala Chai Premium"}},
        seller.token,
    )
    assert updated["updateProduct"]["errors"] == []
    assert updated["updateProduct"]["product"]["price"]["amount"] == 30_000
    assert updated["updateProduct"]["product"]["description"] == "Loose leaf"
    adjusted = await api.gql(ADJUST, {"p": chai["id"], "d": 5}, seller.token)
    assert adjusted["adjustStock"] == {"product": {"id": chai["id"], "stock": 15}, "errors": []}
    assert await ledger_sum(services, chai["id"]) == 15

    # Browsing: newest first, two pages through the cursor, search on the name, by seller.
    first = (await api.gql(PRODUCTS, {"first": 2}))["products"]
    assert [e["node"]["id"] for e in first["edges"]] == [beans, green]
    assert first["pageInfo"]["hasNextPage"] is True
    second = (await api.gql(PRODUCTS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "products"
    ]
    assert [e["node"]["id"] for e in second["edges"]] == [chai["id"]]
    assert second["pageInfo"]["hasNextPage"] is False
    found = (await api.gql(PRODUCTS, {"search": "TEA"}))["products"]
    assert [e["node"]["name"] for e in found["edges"]] == ["Green Tea"]
    other_seller = await api.register("SELLER")
    await api.create_product(other_seller, name="Other Tea")
    mine = (await api.gql(PRODUCTS, {"sellerId": seller.id, "search": "tea"}))["products"]
    nobody = (await api.gql(PRODUCTS, {"sellerId": "not-a-seller-id"}))["products"]
    assert nobody["edges"] == []
    assert [e["node"]["id"] for e in mine["edges"]] == [green]

    # A buyer orders the chai; another only has it in the cart when the seller deletes it.
    buyer = await api.register("USER")
    assert (await api.add_to_cart(buyer, chai["id"], 2))["errors"] == []
    checkout = await api.checkout(buyer)
    assert checkout["errors"] == []
    order_id = checkout["order"]["id"]
    browser = await api.register("USER")
    assert (await api.add_to_cart(browser, chai["id"], 1))["errors"] == []

    deleted = await api.gql(DELETE, {"id": chai["id"]}, seller.token)
    assert deleted["deleteProduct"] == {"deletedId": chai["id"], "errors": []}
    listed = (await api.gql(PRODUCTS, {"first": 100}))["products"]
    assert chai["id"] not in [e["node"]["id"] for e in listed["edges"]]
    assert (await api.gql(PRODUCT, {"id": chai["id"]}))["product"] is None
    assert (await api.gql(PRODUCT, {"id": green}))["product"]["name"] == "Green Tea"
    cart = await api.gql("{ cart { items { quantity } total { amount } } }", token=browser.token)
    assert cart["cart"] == {"items": [], "total": {"amount": 0}}
    async with services.engine.connect() as conn:
        lines = await conn.scalar(text("SELECT count(*) FROM cart_items"))
    assert lines == 0
    order = await api.gql(
        """query($id: ID!) { order(id: $id) { items {
            productName quantity unitPrice { amount } product { id } } } }""",
        {"id": order_id},
        buyer.token,
    )
    assert order["order"]["items"] == [
        {
            "productName": "Masala Chai Premium",
            "quantity": 2,
            "unitPrice": {"amount": 30_000},
            "product": None,
        }
    ]
    # Deleting again, or changing the deleted product, finds nothing.
    again = await api.gql(DELETE, {"id": chai["id"]}, seller.token)
    assert errors_of(again) == [("NOT_FOUND", "productId")]


async def test_invalid_product_input_names_the_field_and_changes_nothing(
    api: Api, services: Services
) -> None:
    seller = await api.register("SELLER")
    product_id = await api.create_product(seller, stock=10)
    create_cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"description": "d" * 5001}, "description"),
        ({"price": 99}, "price"),
        ({"price": MAX_PRICE + 1}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": MAX_STOCK + 1}, "stock"),
    ]
    update_cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"description": "d" * 5001}, "description"),
        ({"price": 99}, "price"),
        ({"price": MAX_PRICE + 1}, "price"),
        ({}, "input"),
    ]
    deltas = [0, -11, MAX_STOCK + 1, -(MAX_STOCK + 1), MAX_STOCK - 9]
    before = await snapshot(services)

    for override, field in create_cases:
        data = await api.gql(CREATE, {"input": product_input(**override)}, seller.token)
        assert errors_of(data) == [("INVALID_INPUT", field)], override
        assert data["createProduct"]["product"] is None
    for change, field in update_cases:
        data = await api.gql(UPDATE, {"id": product_id, "input": change}, seller.token)
        assert errors_of(data) == [("INVALID_INPUT", field)], change
    for delta in deltas:
        data = await api.gql(ADJUST, {"p": product_id, "d": delta}, seller.token)
        assert errors_of(data) == [("INVALID_INPUT", "delta")], delta

    assert await snapshot(services) == before
    # The edges of each range are accepted.
    edge = product_input(name="x" * 200, description="d" * 5000, price=100, stock=MAX_STOCK)
    assert errors_of(await api.gql(CREATE, {"input": edge}, seller.token)) == []
    ok = await api.gql(ADJUST, {"p": product_id, "d": -10}, seller.token)
    assert ok["adjustStock"]["product"]["stock"] == 0


async def _insert_image(services: Services, product_id: str) -> str:
    image_id = str(uuid.uuid4())
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO product_images (id, product_id, store, key, url, content_type, "
                "size_bytes) VALUES (:id, :p, 'LOCAL', :key, :url, 'image/png', 68)"
            ),
            {
                "id": image_id,
                "p": product_id,
                "key": f"products/{product_id}/a.png",
                "url": f"/images/products/{product_id}/a.png",
            },
        )
    return image_id


async def test_only_the_owning_seller_changes_a_product(api: Api, services: Services) -> None:
    owner = await api.register("SELLER")
    rival = await api.register("SELLER")
    buyer = await api.register("USER")
    product_id = await api.create_product(owner, stock=10)
    image_id = await _insert_image(services, product_id)
    attach = {
        "publicId": f"products/{product_id}/x",
        "version": 1,
        "signature": "0" * 40,
        "format": "png",
        "bytes": 68,
    }
    on_product: list[tuple[str, dict[str, Any]]] = [
        (UPDATE, {"id": product_id, "input": {"price": 50_000}}),
        (DELETE, {"id": product_id}),
        (ADJUST, {"p": product_id, "d": -3}),
        (REMOVE_IMAGE, {"i": image_id}),
        (TICKET, {"p": product_id}),
        (ATTACH, {"p": product_id, "input": attach}),
    ]
    callers: list[tuple[Account | None, str]] = [
        (buyer, "FORBIDDEN"),
        (rival, "NOT_FOUND"),
        (None, "UNAUTHENTICATED"),
    ]
    before = await snapshot(services)

    for caller, code in callers:
        for query, variables in on_product:
            data = await api.gql(query, variables, caller.token if caller else None)
            assert [c for c, _ in errors_of(data)] == [code], (query, code)
    for caller, code in ((buyer, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        data = await api.gql(CREATE, {"input": product_input()}, caller.token if caller else None)
        assert [c for c, _ in errors_of(data)] == [code]

    assert await snapshot(services) == before
    # The owner still can.
    ok = await api.gql(ADJUST, {"p": product_id, "d": -3}, owner.token)
    assert ok["adjustStock"]["errors"] == []


async def test_a_page_of_products_costs_the_same_few_statements_whatever_its_size(
    api: Api, services: Services
) -> None:
    sellers = [await api.register("SELLER") for _ in range(3)]
    async with services.engine.begin() as conn:
        for n in range(50):
            product_id = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO products (id, seller_id, name, description, price, currency, "
                    "stock, created_at) VALUES (:id, :s, :name, '', 1000, 'INR', 0, "
                    "now() - make_interval(secs => :n))"
                ),
                {"id": product_id, "s": sellers[n % 3].id, "name": f"Product {n}", "n": n},
            )
            await conn.execute(
                text(
                    "INSERT INTO product_images (id, product_id, store, key, url, content_type, "
                    "size_bytes) VALUES (:id, :p, 'LOCAL', :key, :url, 'image/png', 68)"
                ),
                {
                    "id": uuid.uuid4(),
                    "p": product_id,
                    "key": f"products/{product_id}/a.png",
                    "url": f"/images/products/{product_id}/a.png",
                },
            )
    query = """query($first: Int) { products(first: $first) { edges { node {
        id name seller { id name } images { url } } } pageInfo { hasNextPage } } }"""
    statements: list[str] = []

    def count(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    costs: dict[int, int] = {}
    event.listen(services.engine.sync_engine, "before_cursor_execute", count)
    try:
        for size in (5, 50):
            statements.clear()
            data = await api.gql(query, {"first": size})
            costs[size] = len(statements)
            edges = data["products"]["edges"]
            assert len(edges) == size
            assert all(len(e["node"]["images"]) == 1 and e["node"]["seller"]["name"] for e in edges)
            assert {e["node"]["seller"]["id"] for e in edges} == {s.id for s in sellers}
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", count)
    assert costs[5] == costs[50], costs
    assert costs[50] <= 4, statements
