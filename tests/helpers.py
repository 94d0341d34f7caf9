"""Small helpers for tests that speak GraphQL over HTTP, and the SQL invariant checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fulfilment_invariants import assert_fulfilment_invariants


@dataclass
class Account:
    id: str
    email: str
    token: str
    refresh_token: str


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.raw(query, variables, token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def register(self, role: str = "USER", email: str | None = None) -> Account:
        email = email or f"{role.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        data = await self.gql(
            """mutation($input: RegisterInput!) { register(input: $input) {
                accessToken refreshToken user { id } errors { code message field } } }""",
            {
                "input": {
                    "email": email,
                    "password": "correct horse battery",
                    "name": "T",
                    "role": role,
                }
            },
        )
        payload = data["register"]
        assert payload["errors"] == [], payload
        return Account(
            payload["user"]["id"], email, payload["accessToken"], payload["refreshToken"]
        )

    async def create_product(
        self, seller: Account, *, price: int = 10_000, stock: int = 10, name: str = "Chai"
    ) -> str:
        data = await self.gql(
            """mutation($input: CreateProductInput!) { createProduct(input: $input) {
                product { id } errors { code message field } } }""",
            {"input": {"name": name, "description": "", "price": price, "stock": stock}},
            seller.token,
        )
        assert data["createProduct"]["errors"] == [], data
        product_id: str = data["createProduct"]["product"]["id"]
        return product_id

    async def add_to_cart(
        self, buyer: Account, product_id: str, quantity: int = 1
    ) -> dict[str, Any]:
        data = await self.gql(
            """mutation($p: ID!, $q: Int!) { addToCart(productId: $p, quantity: $q) {
                cart { total { amount } } errors { code message field } } }""",
            {"p": product_id, "q": quantity},
            buyer.token,
        )
        result: dict[str, Any] = data["addToCart"]
        return result

    async def checkout(self, buyer: Account, key: str | None = None) -> dict[str, Any]:
        data = await self.gql(CHECKOUT, {"key": key or f"key-{uuid.uuid4().hex}"}, buyer.token)
        result: dict[str, Any] = data["checkout"]
        return result


CHECKOUT = """mutation($key: String!) { checkout(idempotencyKey: $key) {
    order { id status total { amount currency }
            items { id quantity status unitPrice { amount } }
            payment { status amount { amount } razorpayOrderId razorpayKeyId receipt } }
    errors { code message field } } }"""


async def assert_invariants(engine: AsyncEngine) -> None:
    """The money and stock invariants of DESIGN.md, checked in SQL."""
    async with engine.connect() as conn:
        drift = (
            await conn.execute(
                text(
                    """SELECT p.id, p.stock, COALESCE(SUM(l.delta), 0) AS ledger
                       FROM products p LEFT JOIN stock_ledger l ON l.product_id = p.id
                       GROUP BY p.id HAVING p.stock <> COALESCE(SUM(l.delta), 0) OR p.stock < 0"""
                )
            )
        ).all()
        assert drift == [], f"stock differs from its ledger: {drift}"
        double = (
            await conn.execute(
                text(
                    "SELECT buyer_id, idempotency_key FROM orders GROUP BY 1, 2 HAVING count(*) > 1"
                )
            )
        ).all()
        assert double == [], f"two orders for one key: {double}"
        unpaid = (
            await conn.execute(
                text(
                    """SELECT o.id FROM orders o WHERE o.paid_at IS NOT NULL AND NOT EXISTS (
                         SELECT 1 FROM payments p JOIN captures c ON c.payment_id = p.id
                         WHERE p.order_id = o.id AND c.owed AND c.amount = p.amount
                           AND c.currency = p.currency AND p.status = 'CAPTURED')"""
                )
            )
        ).all()
        assert unpaid == [], f"orders paid without a matching capture: {unpaid}"
        over = (
            await conn.execute(
                text(
                    """SELECT c.id FROM captures c JOIN refunds r ON r.capture_id = c.id
                       WHERE r.status <> 'FAILED' GROUP BY c.id, c.amount
                       HAVING SUM(r.amount) > c.amount"""
                )
            )
        ).all()
        assert over == [], f"refunds exceed the capture: {over}"
        # Units cancelled after payment plus units returned: each refunded exactly once, at its
        # price, by refunds that are not FAILED (and no such refund at another price).
        unmatched = (
            await conn.execute(
                text(
                    """SELECT i.id FROM order_items i
                       WHERE (i.paid_quantity IS NOT NULL
                         AND i.paid_quantity - (i.quantity - i.cancelled_quantity)
                             + i.returned_quantity <> COALESCE((
                         SELECT SUM(r.quantity) FROM refunds r
                         WHERE r.order_item_id = i.id AND r.status <> 'FAILED'
                           AND r.amount = r.quantity * i.unit_price), 0))
                         OR EXISTS (SELECT 1 FROM refunds r
                                    WHERE r.order_item_id = i.id AND r.status <> 'FAILED'
                                      AND r.amount <> r.quantity * i.unit_price)"""
                )
            )
        ).all()
        assert unmatched == [], (
            f"cancelled or returned units without exactly one refund at their price: {unmatched}"
        )
    await assert_fulfilment_invariants(engine)


_PRECOMPUTED_HASH: str | None = None


async def bulk_buyers(
    engine: AsyncEngine,
    n: int,
    *,
    jwt_secret: str,
    product_id: str | None = None,
    quantity: int = 1,
) -> list[Account]:
    """Many buyers at once, written in SQL (registration is tested on its own), with tokens and,
    optionally, one cart line each: race tests spend their time on the race, not on set-up."""
    from joycart.security import hash_password, issue_access_token

    global _PRECOMPUTED_HASH
    if _PRECOMPUTED_HASH is None:
        _PRECOMPUTED_HASH = await hash_password("correct horse battery")
    accounts = []
    async with engine.begin() as conn:
        for _ in range(n):
            uid = uuid.uuid4()
            email = f"bulk-{uid.hex[:12]}@example.com"
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, name, role, password_hash, created_at) "
                    "VALUES (:id, :email, 'Bulk', 'USER', :h, now())"
                ),
                {"id": uid, "email": email, "h": _PRECOMPUTED_HASH},
            )
            if product_id is not None:
                await conn.execute(
                    text(
                        "INSERT INTO cart_items (user_id, product_id, quantity, added_at) "
                        "VALUES (:u, :p, :q, now())"
                    ),
                    {"u": uid, "p": uuid.UUID(product_id), "q": quantity},
                )
            accounts.append(Account(str(uid), email, issue_access_token(jwt_secret, uid), ""))
    return accounts


async def make_jobs_due(engine: AsyncEngine) -> None:
    """Bring every pending job's retry time to now (instead of waiting for its backoff)."""
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE jobs SET run_at = now() WHERE status = 'PENDING'"))
