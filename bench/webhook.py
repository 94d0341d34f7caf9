"""Verified `payment.captured` webhooks applied per second: JoyCart's route beside a plain one.

Seeds pending orders (2 items each, one open Razorpay payment session) straight into the
database (not measured), and starts the plain Starlette route of `plain_webhook.py` (one
uvicorn process, `joycart.db.make_engine` on the same database: JoyCart's statements for a
capture, by hand, in the same two transactions). One webhook to each side is checked to leave
the same rows before anything is timed; then batches of distinct webhooks (one per pending
order) alternate between the two.

    .venv/bin/python bench/webhook.py [--batch 300] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from _harness import Server, cpu_seconds, line, start_plain, temp_dir
from _load import BatchResult, run_batch
from _seed import asyncpg_dsn, seed_products, seed_users
from checkout import webhook_request
from plain_webhook import SECRET_ENV

ITEMS = ((1, 0), (2, 1))  # (quantity, position) of each order's two lines

# ---------------------------------------------------------------------------------------------
# Seeding, the equality check and the measurement.


async def seed_orders(server: Server, count: int) -> list[asyncpg.Record]:
    """`count` pending orders of 2 lines, each with one open payment session."""
    conn = await asyncpg.connect(**asyncpg_dsn(server))
    try:
        async with conn.transaction():
            jwt = server.secrets()["jwt_secret"]
            seller = (await seed_users(conn, 1, role="SELLER", jwt_secret=jwt, prefix="seller"))[0]
            buyer = (await seed_users(conn, 1, role="USER", jwt_secret=jwt, prefix="buyer"))[0]
            product = (await seed_products(conn, [seller.id], 1, stock=0))[0]
            price = 49_900
            orders, items, payments = [], [], []
            for n in range(count):
                order_id = uuid.uuid4()
                total = price * sum(q for q, _ in ITEMS)
                orders.append((order_id, buyer.id, total, f"bench-{order_id.hex}"))
                items += [
                    (uuid.uuid4(), order_id, product, seller.id, price, q, p) for q, p in ITEMS
                ]
                payments.append(
                    (
                        uuid.uuid4(),
                        order_id,
                        f"rcpt_{order_id.hex[:20]}",
                        total,
                        f"order_{n:08d}{order_id.hex[:6]}",
                    )
                )
            await conn.executemany(
                "INSERT INTO orders (id, buyer_id, status, total_amount, currency, idempotency_key,"
                " request_fingerprint, expires_at, created_at, updated_at) VALUES ($1, $2, "
                "'PENDING_PAYMENT', $3, 'INR', $4, repeat('0', 64), now() + interval '1 day', "
                "now(), now())",
                orders,
            )
            await conn.executemany(
                "INSERT INTO order_items (id, order_id, product_id, seller_id, product_name, "
                "unit_price, currency, quantity, cancelled_quantity, status, position, created_at)"
                " VALUES ($1, $2, $3, $4, 'Product 0000', $5, 'INR', $6, 0, 'ACTIVE', $7, now())",
                items,
            )
            await conn.executemany(
                "INSERT INTO payments (id, order_id, sequence, receipt, amount, currency, status, "
                "razorpay_order_id, gateway_attempts, created_at, updated_at) VALUES ($1, $2, 1, "
                "$3, $4, 'INR', 'CREATED', $5, 1, now(), now())",
                payments,
            )
            rows = await conn.fetch(
                "SELECT order_id, razorpay_order_id, amount, currency FROM payments "
                "WHERE status = 'CREATED' ORDER BY razorpay_order_id"
            )
    finally:
        await conn.close()
    line("seeded", f"{len(rows)} pending orders of {len(ITEMS)} lines, each with a session")
    return list(rows)


def mask(value: Any, names: dict[Any, str]) -> Any:
    """A JSON value with our ids named, and its timestamps (a second apart at most) blanked."""
    if isinstance(value, dict):
        return {k: "<time>" if k == "created_at" else mask(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


async def snapshot(conn: asyncpg.Connection, order_id: uuid.UUID) -> dict[str, Any]:
    """What a capture leaves, with its own ids replaced by what they name."""
    order = await conn.fetchrow(
        "SELECT status, paid_at IS NOT NULL AS paid FROM orders WHERE id = $1", order_id
    )
    payment = await conn.fetchrow("SELECT * FROM payments WHERE order_id = $1", order_id)
    assert order is not None
    assert payment is not None
    captures = await conn.fetch(
        "SELECT gateway_payment_id, amount, currency, owed FROM captures WHERE payment_id = $1",
        payment["id"],
    )
    assert len(captures) == 1, captures
    capture = captures[0]
    inbox = await conn.fetchrow(
        "SELECT * FROM webhook_events WHERE id = (SELECT webhook_event_id FROM order_events "
        "WHERE order_id = $1 LIMIT 1)",
        order_id,
    )
    assert inbox is not None
    pay = capture["gateway_payment_id"]
    names = {
        payment["id"]: "payment",
        order_id: "order",
        inbox["id"]: "inbox row",
        f"webhook:{inbox['id']}": "webhook:<inbox row>",
        payment["razorpay_order_id"]: "<razorpay order>",
        pay: "<pay id>",
    }
    events = [
        {k: names.get(v, v) for k, v in dict(e).items()}
        | {"detail": {k: names.get(v, v) for k, v in json.loads(e["detail"]).items()}}
        for e in await conn.fetch(
            "SELECT kind, subject, subject_id, order_item_id, from_status, to_status, actor, "
            "webhook_event_id, detail FROM order_events WHERE order_id = $1 ORDER BY id",
            order_id,
        )
    ]
    items = await conn.fetch(
        "SELECT quantity, paid_quantity, status FROM order_items WHERE order_id = $1 "
        "ORDER BY position",
        order_id,
    )
    return {
        "order": dict(order),
        "payment": {
            "status": payment["status"],
            "razorpay_payment_id": names.get(payment["razorpay_payment_id"]),
        },
        "capture": {**dict(capture), "gateway_payment_id": "<pay id>"},
        "items": [dict(i) for i in items],
        "events": events,
        "inbox": {
            "payload": mask(json.loads(inbox["payload"]), names),
            "event_id_header": inbox["event_id_header"][:4],
            "event_type": inbox["event_type"],
            "deliveries": inbox["deliveries"],
            "outcome": inbox["outcome"],
            "processed": inbox["processed_at"] is not None,
        },
    }


async def compare(server: Server, urls: dict[str, str], payments: list[asyncpg.Record]) -> None:
    """One webhook to each side, then the same body again: the same answers, the same rows."""
    secret = server.secrets()["razorpay_webhook_secret"]
    seen: dict[str, Any] = {}
    conn = await asyncpg.connect(**asyncpg_dsn(server))
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for (name, url), payment in zip(urls.items(), payments, strict=True):
                send = webhook_request(url, secret, payment)
                first, again = (await send(client)).json(), (await send(client)).json()
                forged = await client.post(
                    url,
                    content=b'{"event":"payment.captured"}',
                    headers={"X-Razorpay-Signature": "0" * 64},
                )
                rows = await snapshot(conn, payment["order_id"])
                seen[name] = {"answers": [first, again, forged.status_code], "rows": rows}
    finally:
        await conn.close()
    if os.environ.get("JOYCART_BENCH_SHOW"):
        print(json.dumps(seen, indent=1, default=str))
    a, b = seen.values()
    if a != b:
        raise SystemExit(f"the plain route's rows differ from JoyCart's: not comparable\n{seen}")
    rows = a["rows"]
    assert rows["order"]["status"] == "PAID", rows
    assert rows["payment"]["status"] == "CAPTURED", rows
    kinds = [e["kind"] for e in rows["events"]]
    line(
        "plain rows == JoyCart rows",
        f"yes (answers {a['answers']}; order {rows['order']['status']}, payment "
        f"{rows['payment']['status']}, capture {rows['capture']['amount']}, events {kinds})",
    )


def batch(
    url: str, secret: str, payments: list[asyncpg.Record]
) -> list[Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]]:
    return [webhook_request(url, secret, p) for p in payments]


async def measure(args: argparse.Namespace) -> None:
    with temp_dir("joycart-bench-webhook-") as tmp, Server(tmp / "data") as server:
        warm = 20
        need = 2 + 2 * warm + 2 * args.rounds * args.batch
        payments = await seed_orders(server, need)
        secret = server.secrets()["razorpay_webhook_secret"]
        plain, plain_url = start_plain(
            "plain_webhook.py", server.database_url, "/webhooks/razorpay", {SECRET_ENV: secret}
        )
        try:
            assert server.proc is not None
            targets = {
                "JoyCart": (f"{server.url}/webhooks/razorpay", server.proc.pid),
                "plain": (plain_url, plain.pid),
            }
            await compare(server, {k: u for k, (u, _) in targets.items()}, payments[:2])
            rest = payments[2:]
            for url, _ in targets.values():  # warm pools and caches, not counted
                await run_batch(batch(url, secret, rest[:warm]), concurrency=args.concurrency)
                rest = rest[warm:]
            rates: dict[str, list[float]] = {name: [] for name in targets}
            cpu: dict[str, float] = dict.fromkeys(targets, 0.0)
            for r in range(1, args.rounds + 1):
                for name, (url, pid) in targets.items():
                    todo, rest = rest[: args.batch], rest[args.batch :]
                    before = cpu_seconds(pid)
                    result: BatchResult = await run_batch(
                        batch(url, secret, todo), concurrency=args.concurrency
                    )
                    cpu[name] += cpu_seconds(pid) - before
                    applied = sum(
                        1
                        for b in result.bodies
                        if isinstance(b, dict) and b.get("outcome") == "paid"
                    )
                    rate = applied / result.seconds
                    rates[name].append(rate)
                    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
                    line(
                        f"round {r}: {name}",
                        f"{rate:,.1f} applied/s ({applied} of {len(todo)} in "
                        f"{result.seconds:.2f} s; HTTP {statuses})",
                    )
            for name in targets:
                line(
                    f"{name}, 1 process",
                    f"{statistics.median(rates[name]):,.1f} applied/s (median), server CPU "
                    f"{cpu[name] / (args.rounds * args.batch) * 1e3:.2f} ms/webhook",
                )
            ratios = [j / p for j, p in zip(rates["JoyCart"], rates["plain"], strict=True)]
            line(
                "ratio JoyCart / plain",
                f"{statistics.median(ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in ratios)})",
            )
            conn = await asyncpg.connect(**asyncpg_dsn(server))
            try:
                left = await conn.fetchval(
                    "SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND status <> 'PAID'",
                    [p["order_id"] for p in payments[: need - len(rest)]],
                )
            finally:
                await conn.close()
            line("orders sent a webhook and not PAID", str(left))
            if left:
                raise SystemExit(1)
        finally:
            plain.terminate()
            plain.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=300, help="webhooks per side per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating JoyCart/plain rounds")
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
