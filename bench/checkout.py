"""Checkouts per second (many products; one hot product) and verified webhooks applied per second.

One `joycart serve` process with its simulated Razorpay: every checkout takes the stock, writes
the order, then creates the Razorpay order through the real SDK against the in-process simulator.
Buyers, products and carts are seeded in SQL first (not measured). Checkouts are sent over HTTP,
each buyer once with its own idempotency key, at most `--concurrency` at a time:

  (a) many buyers on many products: each cart has 1-3 lines over `--products` products;
  (b) one hot product: every cart holds 1 unit of the same product (stock to spare).

Then every order is paid by a `payment.captured` webhook signed like Razorpay signs (HMAC-SHA256
hex of the raw body with the webhook secret from the data dir's dev-secrets.json), all posted
concurrently to /webhooks/razorpay; the rate counts verified-and-applied events, and the script
checks in SQL that every order ended PAID and that stock still equals its ledger.

    .venv/bin/python bench/checkout.py [--buyers 200] [--products 100] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from _harness import Server, cpu_seconds, line, temp_dir
from _load import BatchResult, run_batch
from _seed import Seeded, asyncpg_dsn, seed_products, seed_users

CHECKOUT = """mutation($key: String!) { checkout(idempotencyKey: $key) {
    order { id status total { amount currency } items { quantity }
            payment { status amount { amount } razorpayOrderId } }
    errors { code message field } } }"""

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def checkout_request(url: str, buyer: Seeded) -> Request:
    body = json.dumps({"query": CHECKOUT, "variables": {"key": f"bench-{uuid.uuid4().hex}"}})
    headers = {"Authorization": f"Bearer {buyer.token}", "Content-Type": "application/json"}

    def send(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post(url, content=body, headers=headers)

    return send


def webhook_request(url: str, secret: str, payment: asyncpg.Record) -> Request:
    """A `payment.captured` event shaped like Razorpay's, signed over its raw bytes."""
    now = int(time.time())
    entity = {
        "id": f"pay_{secrets.token_hex(7)}",
        "entity": "payment",
        "amount": payment["amount"],
        "currency": payment["currency"],
        "status": "captured",
        "order_id": payment["razorpay_order_id"],
        "international": False,
        "method": "upi",
        "amount_refunded": 0,
        "captured": True,
        "vpa": "success@razorpay",
        "email": "customer@example.com",
        "contact": "+919000090000",
        "notes": {},
        "fee": payment["amount"] * 2 // 100,
        "tax": 0,
        "created_at": now,
    }
    envelope = {
        "entity": "event",
        "account_id": "acc_bench",
        "event": "payment.captured",
        "contains": ["payment"],
        "payload": {"payment": {"entity": entity}},
        "created_at": now,
    }
    body = json.dumps(envelope, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Razorpay-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Razorpay-Event-Id": f"evt_{secrets.token_hex(7)}",
    }

    def send(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post(url, content=body, headers=headers)

    return send


async def seed(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    secret = server.secrets()["jwt_secret"]
    rng = random.Random(11)
    conn = await asyncpg.connect(**asyncpg_dsn(server))
    try:
        async with conn.transaction():
            sellers = await seed_users(conn, 1, role="SELLER", jwt_secret=secret, prefix="seller")
            many = await seed_products(conn, [sellers[0].id], args.products, stock=100_000)
            hot = (await seed_products(conn, [sellers[0].id], 1, stock=args.buyers * 5))[0]
            buyers_a = await seed_users(
                conn, args.buyers, role="USER", jwt_secret=secret, prefix="buyer-a"
            )
            buyers_b = await seed_users(
                conn, args.buyers, role="USER", jwt_secret=secret, prefix="buyer-b"
            )
            lines = []
            for buyer in buyers_a:
                for product in rng.sample(many, rng.randint(1, 3)):
                    lines.append((buyer.id, product, rng.randint(1, 2)))
            lines += [(buyer.id, hot, 1) for buyer in buyers_b]
            await conn.executemany(
                "INSERT INTO cart_items (user_id, product_id, quantity, added_at) "
                "VALUES ($1, $2, $3, now())",
                lines,
            )
    finally:
        await conn.close()
    line(
        "seeded",
        f"{args.products} products + 1 hot product, 2 x {args.buyers} buyers, "
        f"{len(lines)} cart lines",
    )
    return {"a": buyers_a, "b": buyers_b, "hot": hot, "hot_stock": args.buyers * 5}


def summarize_checkouts(label: str, result: BatchResult) -> list[str]:
    """Prints the rate and the outcomes; returns the ids of the orders created."""
    outcomes: Counter[str] = Counter()
    order_ids = []
    for body in result.bodies:
        payload = body.get("data", {}).get("checkout") if isinstance(body, dict) else None
        if payload is None:
            outcomes[f"failed: {str(body)[:80]}"] += 1
            continue
        codes = [e["code"] for e in payload["errors"]]
        order = payload["order"]
        if codes:
            outcomes["/".join(codes)] += 1
        elif order and order["payment"] and order["payment"]["razorpayOrderId"]:
            outcomes["ordered, Razorpay order created"] += 1
        else:
            outcomes["ordered, no Razorpay order"] += 1
        if order:
            order_ids.append(order["id"])
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    line(
        label,
        f"{result.rate:,.1f} checkouts/s ({result.count} in {result.seconds:.2f} s; HTTP {statuses}"
        f"{f'; transport errors {result.transport_errors}' if result.transport_errors else ''})",
    )
    line("  outcomes", "; ".join(f"{k}: {v}" for k, v in outcomes.most_common()))
    return order_ids


def server_cpu(pid: int, since: float, operations: int) -> float:
    """Prints the server's CPU per operation since `since`; returns the new mark."""
    now = cpu_seconds(pid)
    if operations:
        line("  server CPU", f"{(now - since) / operations * 1e3:.1f} ms per operation")
    return now


async def check_stock(server: Server, hot: uuid.UUID, expected_hot: int) -> None:
    conn = await asyncpg.connect(**asyncpg_dsn(server))
    try:
        drift = await conn.fetchval(
            """SELECT count(*) FROM (SELECT p.id FROM products p
                 LEFT JOIN stock_ledger l ON l.product_id = p.id GROUP BY p.id
                 HAVING p.stock <> COALESCE(SUM(l.delta), 0) OR p.stock < 0) d"""
        )
        stock = await conn.fetchval("SELECT stock FROM products WHERE id = $1", hot)
    finally:
        await conn.close()
    line(
        "  stock check",
        f"hot product stock {stock} (expected {expected_hot}); "
        f"products whose stock differs from their ledger: {drift}",
    )


async def run(args: argparse.Namespace) -> None:
    with temp_dir("joycart-bench-checkout-") as tmp, Server(tmp / "data") as server:
        seeded = await seed(server, args)
        graphql = f"{server.url}/graphql"

        # Not measured: one request through the whole path warms pools and the SDK.
        async with httpx.AsyncClient(timeout=30) as client:
            await client.post(graphql, json={"query": "{ __typename }"})

        assert server.proc is not None
        pid = server.proc.pid
        cpu = cpu_seconds(pid)
        a = await run_batch(
            [checkout_request(graphql, b) for b in seeded["a"]], concurrency=args.concurrency
        )
        orders = summarize_checkouts("(a) many buyers, many products", a)
        cpu = server_cpu(pid, cpu, a.count)
        b = await run_batch(
            [checkout_request(graphql, b) for b in seeded["b"]], concurrency=args.concurrency
        )
        orders += summarize_checkouts("(b) one hot product", b)
        cpu = server_cpu(pid, cpu, b.count)
        await check_stock(server, seeded["hot"], seeded["hot_stock"] - len(seeded["b"]))

        conn = await asyncpg.connect(**asyncpg_dsn(server))
        try:
            payments = await conn.fetch(
                """SELECT p.order_id, p.razorpay_order_id, p.amount, p.currency
                     FROM payments p JOIN orders o ON o.id = p.order_id
                    WHERE o.status = 'PENDING_PAYMENT' AND p.status = 'CREATED'
                      AND p.razorpay_order_id IS NOT NULL"""
            )
            secret = server.secrets()["razorpay_webhook_secret"]
            cpu = cpu_seconds(pid)
            hooks = await run_batch(
                [webhook_request(f"{server.url}/webhooks/razorpay", secret, p) for p in payments],
                concurrency=args.concurrency,
            )
            outcomes = Counter(
                body.get("outcome", body.get("status")) if isinstance(body, dict) else str(body)
                for body in hooks.bodies
            )
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(hooks.statuses.items()))
            line(
                "verified payment.captured webhooks",
                f"{hooks.rate:,.1f} applied/s ({hooks.count} in {hooks.seconds:.2f} s; "
                f"HTTP {statuses}; outcomes {dict(outcomes)})",
            )
            server_cpu(pid, cpu, hooks.count)
            by_status = dict(
                await conn.fetch(
                    "SELECT status, count(*) FROM orders WHERE id = ANY($1::uuid[]) GROUP BY 1",
                    [uuid.UUID(o) for o in orders],
                )
            )
        finally:
            await conn.close()
        all_paid = by_status == {"PAID": len(orders)} and len(payments) == len(orders)
        line(
            "  orders after the webhooks",
            f"{by_status} of {len(orders)} -> {'every order PAID' if all_paid else 'NOT ALL PAID'}",
        )
        await check_stock(server, seeded["hot"], seeded["hot_stock"] - len(seeded["b"]))
        if not all_paid:
            raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buyers", type=int, default=200, help="buyers per scenario")
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
