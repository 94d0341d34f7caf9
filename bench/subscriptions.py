"""Subscriptions on one process: memory per open socket and delivery delay under steady updates.

One `joycart serve` process (embedded PostgreSQL, its worker in-process). Seeded in SQL (not
measured): `--sockets` buyers, each with an order of one item. Then this script opens one
WebSocket per buyer (graphql-transport-ws, `connection_init` with the buyer's token) and
subscribes to that buyer's order:

    subscription($id: ID!) { orderUpdated(orderId: $id) { id status paidAt } }

(`--rich`: also `total`, `items`, `payment` and `refunds`, as an order page would), and waits
for every first message (the order as it stands). Memory per socket is the server's RSS after
that, less its RSS before the first socket, divided by the sockets.

Updates: for `--seconds` seconds, every order gets one new order event per second (a committed
`INSERT INTO order_events`, which is what `states.record` writes; the trigger sends the NOTIFY),
spread over 10 batches a second. Delivery delay is from the moment the writer starts the batch's
transaction to the moment the client has the `next` message for that order (so it includes the
INSERT and COMMIT, NOTIFY, the server's read of the order, GraphQL execution and the WebSocket
send). The client, the server and PostgreSQL share the same cores.

    .venv/bin/python bench/subscriptions.py [--sockets 1000] [--seconds 20] [--rich]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from _harness import Server, cpu_seconds, line, temp_dir
from _load import raise_fd_limit, rss_kib
from _seed import asyncpg_dsn, seed_users
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

# What a checkout page waits for (the spinner), and what an order page shows.
# `expiresAt` tells which update a message reflects: every update moves it one second on.
QUERY = """subscription($id: ID!) { orderUpdated(orderId: $id) { id status expiresAt } }"""
RICH_QUERY = """subscription($id: ID!) { orderUpdated(orderId: $id) {
  id status expiresAt total { amount } items { id status cancelledQuantity }
  payment { status } refunds { status amount { amount } } } }"""
BASE_EXPIRY = datetime(2099, 1, 1, tzinfo=UTC)
PROTOCOL = Subprotocol("graphql-transport-ws")
BATCHES_PER_SECOND = 10
CONNECT_CONCURRENCY = 50
SETTLE_SECONDS = 60.0  # after the last update, how long the clients may take to catch up


async def seed_orders(conn: asyncpg.Connection, n: int, jwt_secret: str) -> list[tuple[str, str]]:
    """(order id, buyer token) for n buyers with one pending order of one item each."""
    seller = (await seed_users(conn, 1, role="SELLER", jwt_secret=jwt_secret, prefix="seller"))[0]
    buyers = await seed_users(conn, n, role="USER", jwt_secret=jwt_secret, prefix="buyer")
    product = uuid.uuid4()
    await conn.execute(
        "INSERT INTO products (id, seller_id, name, description, price, currency, stock, "
        "created_at, updated_at) VALUES ($1, $2, 'Masala chai', '250 g', 45000, 'INR', 0, "
        "now(), now())",
        product,
        seller.id,
    )
    orders = [uuid.uuid4() for _ in buyers]
    await conn.executemany(
        "INSERT INTO orders (id, buyer_id, status, total_amount, currency, idempotency_key, "
        "request_fingerprint, expires_at, created_at, updated_at) VALUES ($1, $2, "
        "'PENDING_PAYMENT', 90000, 'INR', $3, 'bench', $4, now(), now())",
        [(o, b.id, f"bench-{o.hex}", BASE_EXPIRY) for o, b in zip(orders, buyers, strict=True)],
    )
    await conn.executemany(
        "INSERT INTO order_items (id, order_id, product_id, seller_id, product_name, unit_price, "
        "currency, quantity, cancelled_quantity, status, position, created_at) VALUES ("
        "$1, $2, $3, $4, 'Masala chai', 45000, 'INR', 2, 0, 'ACTIVE', 0, now())",
        [(uuid.uuid4(), o, product, seller.id) for o in orders],
    )
    return [(str(o), b.token) for o, b in zip(orders, buyers, strict=True)]


@dataclass
class Received:
    # order id -> (time received, number of the update the message reflects), in order
    at: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)


def update_number(message: dict[str, Any]) -> int:
    expires = datetime.fromisoformat(message["payload"]["data"]["orderUpdated"]["expiresAt"])
    return round((expires - BASE_EXPIRY).total_seconds())


async def open_socket(
    url: str, token: str, order_id: str, compression: str | None, query: str = QUERY
) -> ClientConnection:
    ws = await connect(url, subprotocols=[PROTOCOL], open_timeout=120, compression=compression)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"accessToken": token}}))
    ack = json.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no ack: {ack}")
    payload = {"query": query, "variables": {"id": order_id}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    first = json.loads(await ws.recv())
    if first.get("type") != "next" or first["payload"].get("errors"):
        raise RuntimeError(f"no first message: {first}")
    return ws


async def read(ws: ClientConnection, order_id: str, received: Received) -> None:
    try:
        async for raw in ws:
            now = time.time()
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "ping":
                await ws.send('{"type":"pong"}')
            elif message.get("type") == "next" and not message["payload"].get("errors"):
                received.at[order_id].append((now, update_number(message)))
            else:
                received.errors.append(str(message)[:200])
    except Exception as exc:  # a socket that fails is counted, not fatal to the run
        received.errors.append(f"{type(exc).__name__}: {exc}")


async def tick(conn: asyncpg.Connection, order_ids: list[str], seconds: int) -> list[float]:
    """Update every order once a second, in batches: one committed statement moves the order's
    `expires_at` one second on and writes its order event (the trigger sends the NOTIFY).
    Returns when each batch's transaction began, by update number (1, 2, ...) and batch."""
    per = -(-len(order_ids) // BATCHES_PER_SECOND)
    began: list[float] = []
    start = time.perf_counter()
    for second in range(seconds):
        for b in range(BATCHES_PER_SECOND):
            due = start + second + b / BATCHES_PER_SECOND
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            began.append(time.time())
            await conn.execute(
                "WITH moved AS (UPDATE orders SET expires_at = expires_at + interval '1 second' "
                "WHERE id = ANY($1::uuid[]) RETURNING id) "
                "INSERT INTO order_events (order_id, kind, subject, subject_id, actor, detail, "
                "created_at) SELECT id, 'BENCH_TICK', 'ORDER', id, 'bench', '{}'::jsonb, now() "
                "FROM moved",
                [uuid.UUID(o) for o in order_ids[b * per : (b + 1) * per]],
            )
    return began


def delays(
    order_ids: list[str], began: list[float], seconds: int, received: Received
) -> tuple[list[float], int, int]:
    """For every update: from its transaction's start until the client first holds a message
    reflecting it (or a later one). Also: updates never reflected, and messages received."""
    per = -(-len(order_ids) // BATCHES_PER_SECOND)
    found: list[float] = []
    never = 0
    messages = 0
    for index, order_id in enumerate(order_ids):
        batch = index // per
        got = received.at.get(order_id, [])
        messages += len(got)
        for update in range(1, seconds + 1):
            sent = began[(update - 1) * BATCHES_PER_SECOND + batch]
            first = next((at for at, number in got if number >= update), None)
            if first is None:
                never += 1
            else:
                found.append(first - sent)
    return sorted(found), never, messages


async def converged(order_ids: list[str], seconds: int, received: Received) -> float | None:
    """When every client holds its order's last update (perf_counter), or None if not in time."""
    deadline = time.perf_counter() + SETTLE_SECONDS
    while time.perf_counter() < deadline:
        if all(received.at.get(o) and received.at[o][-1][1] >= seconds for o in order_ids):
            return time.perf_counter()
        await asyncio.sleep(0.05)
    return None


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def main(sockets: int, seconds: int, rich: bool) -> None:
    limit = raise_fd_limit(2 * sockets + 512)
    line("file descriptors (soft limit)", str(limit))
    with temp_dir("joycart-bench-subs-") as tmp, Server(tmp / "data") as server:
        assert server.proc is not None
        pid = server.proc.pid
        line("server pid (for py-spy)", str(pid))
        conn = await asyncpg.connect(**asyncpg_dsn(server))
        try:
            pairs = await seed_orders(conn, sockets, server.secrets()["jwt_secret"])
            url = server.url.replace("http://", "ws://") + "/graphql"
            # Warm up: one socket and one update, so the listener and the code paths are loaded.
            warm = await open_socket(url, pairs[0][1], pairs[0][0], None)
            await warm.close()
            await asyncio.sleep(1.0)
            before = rss_kib(pid)
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            mode = "deflate"  # offered, as browsers do (`joycart serve` declines it)
            query = RICH_QUERY if rich else QUERY

            async def one(order_id: str, token: str) -> ClientConnection:
                async with gate:
                    return await open_socket(url, token, order_id, mode, query)

            t0 = time.perf_counter()
            opened = await asyncio.gather(*(one(o, t) for o, t in pairs))
            connect_seconds = time.perf_counter() - t0
            await asyncio.sleep(2.0)  # let the server settle (its GC, its buffers)
            after = rss_kib(pid)
            line("sockets open and subscribed", f"{len(opened)} in {connect_seconds:.1f} s")
            line(
                "server RSS",
                f"{before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with the sockets",
            )
            per_socket = (after - before) / len(opened)
            line("memory per socket (RSS delta / sockets)", f"{per_socket:.1f} KiB")

            received = Received()
            readers = [
                asyncio.create_task(read(ws, o, received))
                for ws, (o, _) in zip(opened, pairs, strict=True)
            ]
            gc.collect()
            cpu0, own0 = cpu_seconds(pid), cpu_seconds(os.getpid())
            t1 = time.perf_counter()
            order_ids = [o for o, _ in pairs]
            began = await tick(conn, order_ids, seconds)
            last = time.perf_counter()
            settled = await converged(order_ids, seconds, received)
            wall = time.perf_counter() - t1
            cpu, own = cpu_seconds(pid) - cpu0, cpu_seconds(os.getpid()) - own0
            found, never, messages = delays(order_ids, began, seconds, received)
            updates = len(order_ids) * seconds
            line("updates committed", f"{updates} ({updates / seconds:.0f}/s for {seconds} s)")
            line(
                "messages received",
                f"{messages}: {messages / updates:.0%} of updates had one of their own "
                "(others were coalesced into a later one)",
            )
            line(
                "every order's last update delivered",
                f"{settled - last:.1f} s after the last commit"
                if settled is not None
                else f"NO: {never} updates never reflected within {SETTLE_SECONDS:.0f} s",
            )
            line(
                "delay, update to the client holding it",
                f"p50 {pct(found, 0.5):.0f} ms, p99 {pct(found, 0.99):.0f} ms, "
                f"max {pct(found, 1.0):.0f} ms",
            )
            line("server CPU", f"{cpu / wall * 100:.0f} % of one core, "
                 f"{cpu / max(1, messages) * 1000:.2f} ms per message")  # fmt: skip
            line("this script's CPU (clients, writer)", f"{own / wall * 100:.0f} % of one core")
            if received.errors:
                line("socket errors", f"{len(received.errors)}: {received.errors[:3]}")
            for ws in opened:
                await ws.close()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            line(
                "summary",
                f"{len(opened)} sockets, {per_socket:.1f} KiB each, p99 delay "
                f"{pct(found, 0.99):.0f} ms, {messages / updates:.0%} of updates sent on their "
                f"own, {never} never reflected "
                f"[{'order page' if rich else 'status'} selection]",
            )
        finally:
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--rich", action="store_true", help="select items, payment and refunds too (an order page)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.sockets, args.seconds, args.rich))
