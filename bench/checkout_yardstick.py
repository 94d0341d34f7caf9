"""Checkouts per second: JoyCart's `checkout` mutation beside a plain Starlette route.

Seeds one seller, 100 products and buyers with carts of 1-3 lines straight into the database
(not measured), and starts the plain Starlette route of `plain_checkout.py` (one uvicorn
process, `joycart.db.make_engine` on the same database: JoyCart's statements for a checkout,
by hand, in the same transactions, with the same SDK call to the same simulated Razorpay).
Two buyers with the same cart, one per side, must leave the same rows and get the same answer
before anything is timed; then batches of checkouts (one per buyer) alternate between the two.

    .venv/bin/python bench/checkout_yardstick.py [--batch 100] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from _checkout_snapshot import mask_answer, snapshot
from _harness import Server, cpu_seconds, line, start_plain, temp_dir
from _load import run_batch
from _seed import Seeded, asyncpg_dsn, seed_products, seed_users
from checkout import Request, checkout_request
from plain_checkout import CONFIG_ENV

PRODUCTS = 100
HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# Seeding, the equality check and the measurement.


def plain_request(url: str, buyer: Seeded) -> Request:
    body = orjson.dumps({"key": f"bench-{uuid.uuid4().hex}"})
    headers = {"Authorization": f"Bearer {buyer.token}", "Content-Type": "application/json"}

    def send(client: httpx.AsyncClient) -> Any:
        return client.post(url, content=body, headers=headers)

    return send


async def seed(server: Server, buyers: int) -> list[Seeded]:
    """Buyers 0 and 1 get the same cart (the equality check); the rest 1-3 random lines."""
    secret = server.secrets()["jwt_secret"]
    rng = random.Random(13)
    conn = await asyncpg.connect(**asyncpg_dsn(server))
    try:
        async with conn.transaction():
            seller = await seed_users(conn, 1, role="SELLER", jwt_secret=secret, prefix="seller")
            products = await seed_products(conn, [seller[0].id], PRODUCTS, stock=100_000)
            seeded = await seed_users(conn, buyers, role="USER", jwt_secret=secret, prefix="buyer")
            same = [(p, rng.randint(1, 2)) for p in rng.sample(products, 3)]
            lines = [(b.id, p, q) for b in seeded[:2] for p, q in same]
            for buyer in seeded[2:]:
                lines += [
                    (buyer.id, p, rng.randint(1, 2))
                    for p in rng.sample(products, rng.randint(1, 3))
                ]
            await conn.executemany(
                "INSERT INTO cart_items (user_id, product_id, quantity, added_at) "
                "VALUES ($1, $2, $3, now())",
                lines,
            )
    finally:
        await conn.close()
    line("seeded", f"{PRODUCTS} products, {buyers} buyers, {len(lines)} cart lines")
    return seeded


def start_plain_checkout(server: Server) -> tuple[subprocess.Popen[bytes], str]:
    secrets = server.secrets()
    config = {
        "jwt_secret": secrets["jwt_secret"],
        "key_id": server.razorpay.key_id,
        "key_secret": secrets["razorpay_key_secret"],
        "url": server.razorpay.url,
        "timeout": "10",
    }
    env = {CONFIG_ENV: json.dumps(config)}
    return start_plain("plain_checkout.py", server.database_url, "/checkout", env)


async def compare(server: Server, graphql: str, plain: str, buyers: list[Seeded]) -> None:
    seen: dict[str, Any] = {}
    conn = await asyncpg.connect(**asyncpg_dsn(server))
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for name, send, buyer in (
                ("GraphQL", checkout_request(graphql, buyers[0]), buyers[0]),
                ("plain", plain_request(plain, buyers[1]), buyers[1]),
            ):
                body = (await send(client)).json()
                answer = body["data"]["checkout"] if name == "GraphQL" else body
                seen[name] = {
                    "answer": mask_answer(answer),
                    "rows": await snapshot(conn, buyer.id),
                }
    finally:
        await conn.close()
    if os.environ.get("JOYCART_BENCH_SHOW"):
        print(json.dumps(seen, indent=1, default=str))
    g, p = seen.values()
    if g != p:
        raise SystemExit(f"the plain route's rows differ from GraphQL's: not comparable\n{seen}")
    rows = g["rows"]
    assert rows["payment"]["razorpay_order_id"] == "<razorpay order>", rows
    kinds = [e["kind"] for e in rows["events"]]
    line(
        "plain rows == GraphQL rows",
        f"yes (order {rows['order']['status']} {rows['order']['total_amount']}, "
        f"{len(rows['items'])} items, payment {rows['payment']['status']} with a Razorpay order, "
        f"job {rows['jobs'][0]['status']}, events {kinds})",
    )


async def measure(args: argparse.Namespace) -> None:
    with temp_dir("joycart-bench-checkout-yardstick-") as tmp, Server(tmp / "data") as server:
        warm = 10
        buyers = await seed(server, 2 + 2 * warm + 2 * args.rounds * args.batch)
        graphql = f"{server.url}/graphql"
        plain, plain_url = start_plain_checkout(server)
        try:
            assert server.proc is not None
            makers = {
                "GraphQL": (checkout_request, graphql, server.proc.pid),
                "plain": (plain_request, plain_url, plain.pid),
            }
            await compare(server, graphql, plain_url, buyers[:2])
            rest = buyers[2:]
            for make, url, _ in makers.values():  # warm pools, SDK clients, not counted
                await run_batch([make(url, b) for b in rest[:warm]], concurrency=args.concurrency)
                rest = rest[warm:]
            rates: dict[str, list[float]] = {name: [] for name in makers}
            cpu: dict[str, float] = dict.fromkeys(makers, 0.0)
            simulator: dict[str, float] = dict.fromkeys(makers, 0.0)
            for r in range(1, args.rounds + 1):
                for name, (make, url, pid) in makers.items():
                    todo, rest = rest[: args.batch], rest[args.batch :]
                    before, sim_before = cpu_seconds(pid), cpu_seconds(server.razorpay.pid)
                    result = await run_batch(
                        [make(url, b) for b in todo], concurrency=args.concurrency
                    )
                    cpu[name] += cpu_seconds(pid) - before
                    simulator[name] += cpu_seconds(server.razorpay.pid) - sim_before
                    ok = 0
                    for body in result.bodies:
                        if isinstance(body, dict) and name == "GraphQL":
                            body = (body.get("data") or {}).get("checkout")
                        if (
                            isinstance(body, dict)
                            and not body.get("errors")
                            and ((body.get("order") or {}).get("payment") or {}).get(
                                "razorpayOrderId"
                            )
                        ):
                            ok += 1
                    rate = ok / result.seconds
                    rates[name].append(rate)
                    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
                    line(
                        f"round {r}: {name}",
                        f"{rate:,.1f} checkouts/s ({ok} of {len(todo)} with a Razorpay order in "
                        f"{result.seconds:.2f} s; HTTP {statuses})",
                    )
            for name in makers:
                line(
                    f"{name}, 1 process",
                    f"{statistics.median(rates[name]):,.1f} checkouts/s (median), server CPU "
                    f"{cpu[name] / (args.rounds * args.batch) * 1e3:.2f} ms/checkout",
                )
            per = {k: v / (args.rounds * args.batch) * 1e3 for k, v in simulator.items()}
            line(
                "  simulated Razorpay",
                f"its own process: {per['GraphQL']:.2f} ms/checkout in GraphQL's rounds, "
                f"{per['plain']:.2f} in plain's (in neither server's figure)",
            )
            ratios = [g / p for g, p in zip(rates["GraphQL"], rates["plain"], strict=True)]
            line(
                "ratio GraphQL / plain",
                f"{statistics.median(ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in ratios)})",
            )
            conn = await asyncpg.connect(**asyncpg_dsn(server))
            try:
                drift = await conn.fetchval(
                    """SELECT count(*) FROM (SELECT p.id FROM products p
                         LEFT JOIN stock_ledger l ON l.product_id = p.id GROUP BY p.id
                         HAVING p.stock <> COALESCE(SUM(l.delta), 0) OR p.stock < 0) d"""
                )
                unopened = await conn.fetchval(
                    "SELECT count(*) FROM payments WHERE razorpay_order_id IS NULL"
                )
            finally:
                await conn.close()
            line(
                "after both sides",
                f"products whose stock differs from their ledger: {drift}; "
                f"payment sessions without a Razorpay order: {unopened}",
            )
            if drift or unopened:
                raise SystemExit(1)
        finally:
            plain.terminate()
            plain.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=100, help="checkouts per side per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating GraphQL/plain rounds")
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
