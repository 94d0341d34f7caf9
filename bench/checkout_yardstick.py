"""Checkouts per second: JoyCart's `checkout` mutation beside a plain Starlette route.

Seeds one seller, 100 products and buyers with carts of 1-3 lines straight into the database
(not measured). The plain route (this file, `--serve-plain`, one uvicorn process,
`joycart.db.make_engine` on the same database) does by hand, with SQLAlchemy Core `text()`,
the statements JoyCart sends for a checkout, in the same transactions: the access token's
account; then the buyer row `FOR NO KEY UPDATE`, the cart, the idempotency read, the default
address, the order, each product's guarded stock update in id order, the ledger and item rows,
the payment session, the job that owes its Razorpay order, the cart delete, the ORDER_PLACED
event; then the call lease, the session's attempt count, the same razorpay SDK `order.create`
against the same simulated Razorpay, and the result under the lease (order and payment
`FOR UPDATE`, the job settled, the current session, PAYMENT_SESSION_OPENED, the Razorpay order
id), the lease released, and the answer's items. Two buyers with the same cart, one per side,
must leave the same rows and get the same answer before anything is timed.

    .venv/bin/python bench/checkout_yardstick.py [--batch 100] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from _harness import (
    HOST,
    Seeded,
    Server,
    asyncpg_dsn,
    cpu_seconds,
    free_port,
    line,
    run_batch,
    seed_products,
    seed_users,
    temp_dir,
)
from checkout import Request, checkout_request

CONFIG_ENV = "JOYCART_BENCH_CHECKOUT_CONFIG"
PRODUCTS = 100
WINDOW = timedelta(minutes=30)  # joycart's default payment_window_minutes

SQL = {
    "user": """SELECT users.id, users.email, users.name, users.role, users.password_hash,
        users.token_version, users.created_at, false AS revoked FROM users
        WHERE users.id = :id""",
    "buyer_lock": "SELECT users.id FROM users WHERE users.id = :id FOR NO KEY UPDATE",
    "cart": """SELECT products.id, products.seller_id, products.name, products.description,
        products.price, products.currency, products.stock, products.deleted_at,
        products.created_at, products.updated_at, cart_items.quantity FROM products
        JOIN cart_items ON cart_items.product_id = products.id
        WHERE cart_items.user_id = :buyer AND products.deleted_at IS NULL
        ORDER BY cart_items.added_at, products.id""",
    "existing": """SELECT orders.id FROM orders
        WHERE orders.buyer_id = :buyer AND orders.idempotency_key = :key""",
    "address": """SELECT addresses.id FROM addresses
        WHERE addresses.user_id = :buyer AND addresses.is_default""",
    "order": """INSERT INTO orders (id, buyer_id, status, total_amount, currency,
        idempotency_key, request_fingerprint, expires_at, paid_at, created_at, updated_at)
        VALUES (:id, :buyer, 'PENDING_PAYMENT', :total, 'INR', :key, :fingerprint, :expires,
        NULL, :now, :now)""",
    "take": """UPDATE products SET stock=(products.stock - :qty), updated_at=:now
        WHERE products.id = :id AND products.deleted_at IS NULL AND products.stock >= :qty
        RETURNING products.id""",
    "payment": """INSERT INTO payments (id, order_id, sequence, receipt, amount, currency,
        status, razorpay_order_id, razorpay_payment_id, gateway_attempts, last_gateway_error,
        created_at, updated_at) VALUES (:id, :order, 1, :receipt, :amount, 'INR', 'CREATED',
        NULL, NULL, 0, NULL, :now, :now)""",
    "job": """INSERT INTO jobs (kind, payload, dedupe_key, status, run_at, attempts, created_at,
        updated_at) VALUES ('create_gateway_order', CAST(:payload AS JSONB), :key, 'PENDING',
        :run_at, 0, :now, :now) ON CONFLICT (dedupe_key) WHERE status = 'PENDING' DO NOTHING
        RETURNING jobs.id""",
    "cart_delete": "DELETE FROM cart_items WHERE cart_items.user_id = :buyer",
    "event": """INSERT INTO order_events (order_id, kind, subject, subject_id, order_item_id,
        from_status, to_status, actor, webhook_event_id, detail, created_at) VALUES (:order,
        :kind, :subject, :subject_id, NULL, NULL, NULL, :actor, NULL, CAST(:detail AS JSONB),
        :now) RETURNING order_events.id""",
    "lease_take": """INSERT INTO call_leases (key, token, expires_at)
        VALUES (:key, :token, (now() + interval '120 seconds')) ON CONFLICT (key) DO UPDATE
        SET token = :token, expires_at = (now() + interval '120 seconds')
        WHERE call_leases.expires_at < now() RETURNING call_leases.token""",
    "payment_get": "SELECT * FROM payments WHERE payments.id = :id",
    "order_get": "SELECT * FROM orders WHERE orders.id = :id",
    "attempt": """UPDATE payments SET gateway_attempts=:attempts, updated_at=:now
        WHERE payments.id = :id""",
    "lease_confirm": "SELECT call_leases.token FROM call_leases WHERE call_leases.key = :key "
    "FOR UPDATE",
    "order_lock": "SELECT * FROM orders WHERE orders.id = :id FOR UPDATE",
    "payment_lock": "SELECT * FROM payments WHERE payments.id = :id FOR UPDATE",
    "settle": """UPDATE jobs SET status='DONE', locked_until=NULL, lease_token=NULL,
        updated_at=:now WHERE jobs.dedupe_key = :key AND jobs.status = 'PENDING'""",
    "current": """SELECT * FROM payments WHERE payments.order_id = :order
        ORDER BY payments.sequence DESC LIMIT 1""",
    "opened": """UPDATE payments SET razorpay_order_id=:rzp, updated_at=:now
        WHERE payments.id = :id""",
    "lease_drop": """DELETE FROM call_leases
        WHERE call_leases.key = :key AND call_leases.token = :token""",
    "items": """SELECT * FROM order_items WHERE order_items.order_id = :order
        ORDER BY order_items.position""",
}


def plain_app(database_url: str, config: dict[str, str]) -> Any:
    import razorpay
    from sqlalchemy import text
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from joycart.db import make_engine
    from joycart.security import decode_access_token

    engine = make_engine(database_url)
    sql = {name: text(statement) for name, statement in SQL.items()}
    local = threading.local()

    def sdk() -> Any:  # one SDK client per worker thread, as JoyCart's gateway keeps them
        client = getattr(local, "client", None)
        if client is None:
            client = razorpay.Client(
                auth=(config["key_id"], config["key_secret"]), base_url=config["url"]
            )
            client.set_app_details({"title": "JoyCart", "version": "0.1.0"})
            version = client._get_version()
            client._get_version = lambda: version
            local.client = client
        return client

    def error(code: str, message: str) -> Response:
        return JSONResponse({"order": None, "errors": [{"code": code, "message": message}]})

    async def checkout(request: HttpRequest) -> Response:
        auth = request.headers.get("authorization", "")
        claims = decode_access_token(config["jwt_secret"], auth.removeprefix("Bearer "))
        key = str(orjson.loads(await request.body())["key"])
        async with engine.connect() as conn:
            user = (await conn.execute(sql["user"], {"id": claims.user_id})).one_or_none()
        if user is None or user.token_version != claims.token_version or user.role != "USER":
            return JSONResponse({"error": "unauthenticated"}, status_code=401)
        now = datetime.now(UTC)
        order_id, payment_id = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(sql["buyer_lock"], {"id": user.id})
            cart = (await conn.execute(sql["cart"], {"buyer": user.id})).all()
            fingerprint = hashlib.sha256(
                ";".join(
                    f"{pid}:{qty}" for pid, qty in sorted((r.id, r.quantity) for r in cart)
                ).encode()
            ).hexdigest()
            if await conn.scalar(sql["existing"], {"buyer": user.id, "key": key}):
                raise NotImplementedError("the yardstick places new orders only")
            if not cart:
                return error("CART_EMPTY", "Your cart is empty.")
            if await conn.scalar(sql["address"], {"buyer": user.id}):
                raise NotImplementedError("the yardstick's buyers have no address")
            total = sum(r.price * r.quantity for r in cart)
            await conn.execute(
                sql["order"],
                {
                    "id": order_id,
                    "buyer": user.id,
                    "total": total,
                    "key": key,
                    "fingerprint": fingerprint,
                    "expires": now + WINDOW,
                    "now": now,
                },
            )
            lines = sorted(cart, key=lambda r: r.id)
            for r in lines:
                taken = await conn.scalar(sql["take"], {"qty": r.quantity, "now": now, "id": r.id})
                if taken is None:
                    await conn.rollback()
                    return error("OUT_OF_STOCK", f"Not enough {r.name!r} in stock.")
            ledger = ", ".join(
                f"(:p{i}, :d{i}, 'CHECKOUT', :order, :buyer, :now)" for i in range(len(lines))
            )
            await conn.execute(
                text(
                    "INSERT INTO stock_ledger (product_id, delta, reason, order_id, actor_id, "  # noqa: S608 (placeholders only)
                    f"created_at) VALUES {ledger} RETURNING stock_ledger.id"
                ),
                {"order": order_id, "buyer": user.id, "now": now}
                | {f"p{i}": r.id for i, r in enumerate(lines)}
                | {f"d{i}": -r.quantity for i, r in enumerate(lines)},
            )
            items = ", ".join(
                f"(:i{i}, :order, :p{i}, :s{i}, :n{i}, :u{i}, :c{i}, :q{i}, 0, NULL, 0, 0, 0, 0, "
                f"'ACTIVE', {i}, :now)"
                for i in range(len(lines))
            )
            values: dict[str, Any] = {"order": order_id, "now": now}
            for i, r in enumerate(lines):
                values |= {
                    f"i{i}": uuid.uuid4(),
                    f"p{i}": r.id,
                    f"s{i}": r.seller_id,
                    f"n{i}": r.name,
                    f"u{i}": r.price,
                    f"c{i}": r.currency,
                    f"q{i}": r.quantity,
                }
            await conn.execute(
                text(
                    "INSERT INTO order_items (id, order_id, product_id, seller_id, product_name, "  # noqa: S608 (placeholders only)
                    "unit_price, currency, quantity, cancelled_quantity, paid_quantity, "
                    "shipped_quantity, delivered_quantity, return_requested_quantity, "
                    f"returned_quantity, status, position, created_at) VALUES {items}"
                ),
                values,
            )
            await conn.execute(
                sql["payment"],
                {
                    "id": payment_id,
                    "order": order_id,
                    "receipt": str(order_id),
                    "amount": total,
                    "now": now,
                },
            )
            await conn.execute(
                sql["job"],
                {
                    "payload": json.dumps({"payment_id": str(payment_id)}),
                    "key": f"gateway-order:{payment_id}",
                    "run_at": now + timedelta(seconds=5),
                    "now": now,
                },
            )
            await conn.execute(sql["cart_delete"], {"buyer": user.id})
            await conn.execute(
                sql["event"],
                {
                    "order": order_id,
                    "kind": "ORDER_PLACED",
                    "subject": "ORDER",
                    "subject_id": order_id,
                    "actor": f"user:{user.id}",
                    "detail": json.dumps({"total": total, "idempotency_key": key}),
                    "now": now,
                },
            )
        lease_key, token = f"gateway-order:{payment_id}", uuid.uuid4()
        async with engine.begin() as conn:
            if await conn.scalar(sql["lease_take"], {"key": lease_key, "token": token}) != token:
                raise NotImplementedError("the yardstick's leases are never contended")
        try:
            async with engine.begin() as conn:
                payment = (await conn.execute(sql["payment_get"], {"id": payment_id})).one()
                await conn.execute(sql["order_get"], {"id": order_id})
                await conn.execute(
                    sql["attempt"],
                    {
                        "attempts": payment.gateway_attempts + 1,
                        "now": datetime.now(UTC),
                        "id": payment_id,
                    },
                )
            data = {
                "amount": payment.amount,
                "currency": payment.currency,
                "receipt": payment.receipt,
                "notes": {"joycart_order_id": str(order_id), "joycart_payment_id": str(payment_id)},
            }
            created = await asyncio.to_thread(
                lambda: sdk().order.create(data, timeout=float(config["timeout"]))
            )
            async with engine.begin() as conn:
                if await conn.scalar(sql["lease_confirm"], {"key": lease_key}) != token:
                    raise NotImplementedError("the yardstick's leases are never taken over")
                await conn.execute(sql["order_lock"], {"id": order_id})
                await conn.execute(sql["payment_lock"], {"id": payment_id})
                now = datetime.now(UTC)
                await conn.execute(sql["settle"], {"now": now, "key": lease_key})
                current = (await conn.execute(sql["current"], {"order": order_id})).one()
                assert current.id == payment_id
                await conn.execute(
                    sql["event"],
                    {
                        "order": order_id,
                        "kind": "PAYMENT_SESSION_OPENED",
                        "subject": "PAYMENT",
                        "subject_id": payment_id,
                        "actor": "system",
                        "detail": json.dumps(
                            {
                                "razorpay_order_id": created["id"],
                                "amount": payment.amount,
                                "found_by_receipt": False,
                            }
                        ),
                        "now": now,
                    },
                )
                await conn.execute(
                    sql["opened"], {"rzp": created["id"], "now": now, "id": payment_id}
                )
        finally:
            async with engine.begin() as conn:
                await conn.execute(sql["lease_drop"], {"key": lease_key, "token": token})
        async with engine.connect() as conn:
            rows = (await conn.execute(sql["items"], {"order": order_id})).all()
        order = {
            "id": str(order_id),
            "status": "PENDING_PAYMENT",
            "total": {"amount": total, "currency": "INR"},
            "items": [{"quantity": r.quantity} for r in rows],
            "payment": {
                "status": "CREATED",
                "amount": {"amount": payment.amount},
                "razorpayOrderId": created["id"],
            },
        }
        return JSONResponse({"order": order, "errors": []})

    return Starlette(routes=[Route("/checkout", checkout, methods=["POST"])])


def serve_plain(port: int, database_url: str) -> None:
    import uvicorn

    app = plain_app(database_url, json.loads(os.environ[CONFIG_ENV]))
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


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


def start_plain(server: Server) -> tuple[subprocess.Popen[bytes], str]:
    from joycart.config import SIMULATED_KEY_ID

    secrets = server.secrets()
    config = {
        "jwt_secret": secrets["jwt_secret"],
        "key_id": SIMULATED_KEY_ID,
        "key_secret": secrets["razorpay_key_secret"],
        "url": json.loads((server.data_dir / "simulator.json").read_text())["url"],
        "timeout": "10",
    }
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-plain",
            str(port),
            "--database-url",
            server.database_url,
        ],
        cwd=Path(__file__).resolve().parent,
        env={**os.environ, CONFIG_ENV: json.dumps(config)},
    )
    url = f"http://{HOST}:{port}/checkout"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the plain app exited early")
        try:
            httpx.get(url, timeout=2)  # 405: the route is up
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("the plain app did not answer within 30 s")


async def snapshot(conn: asyncpg.Connection, buyer: uuid.UUID) -> dict[str, Any]:
    """What one checkout left, with its own ids replaced by what they name."""
    order = await conn.fetchrow("SELECT * FROM orders WHERE buyer_id = $1", buyer)
    assert order is not None
    payment = await conn.fetchrow("SELECT * FROM payments WHERE order_id = $1", order["id"])
    assert payment is not None
    names: dict[Any, str] = {
        order["id"]: "<order>",
        str(order["id"]): "<order>",
        payment["id"]: "<payment>",
        str(payment["id"]): "<payment>",
        buyer: "<buyer>",
        f"user:{buyer}": "user:<buyer>",
        order["idempotency_key"]: "<key>",
        payment["razorpay_order_id"]: "<razorpay order>",
        f"gateway-order:{payment['id']}": "gateway-order:<payment>",
    }

    def named(row: Any) -> dict[str, Any]:
        out = {}
        for k, v in dict(row).items():
            if k in ("id", "created_at", "updated_at", "added_at"):
                continue
            if isinstance(v, str) and v.startswith("{"):
                v = {a: names.get(b, b) for a, b in json.loads(v).items()}
            out[k] = names.get(v, v) if isinstance(v, str | uuid.UUID) else v
        return out

    def rows(records: list[Any]) -> list[dict[str, Any]]:
        return [named(r) for r in records]

    o = named(order)
    # Both sides take the clock more than once per row: compare to the second.
    o["expires_at"] = round((order["expires_at"] - order["created_at"]).total_seconds())
    p = named(payment)
    return {
        "order": o,
        "payment": p,
        "items": rows(
            await conn.fetch(
                "SELECT * FROM order_items WHERE order_id = $1 ORDER BY position", order["id"]
            )
        ),
        "ledger": rows(
            await conn.fetch(
                "SELECT * FROM stock_ledger WHERE order_id = $1 ORDER BY product_id", order["id"]
            )
        ),
        "jobs": rows(
            await conn.fetch(
                "SELECT kind, payload::text, dedupe_key, status, attempts, locked_until, "
                "lease_token, round(extract(epoch FROM run_at - created_at)) AS delay "
                "FROM jobs WHERE dedupe_key = $1",
                f"gateway-order:{payment['id']}",
            )
        ),
        "events": rows(
            await conn.fetch(
                "SELECT kind, subject, subject_id, order_item_id, from_status, to_status, actor, "
                "webhook_event_id, detail::text FROM order_events WHERE order_id = $1 ORDER BY id",
                order["id"],
            )
        ),
        "cart lines left": await conn.fetchval(
            "SELECT count(*) FROM cart_items WHERE user_id = $1", buyer
        ),
        "leases left": await conn.fetchval("SELECT count(*) FROM call_leases"),
    }


def mask_answer(answer: Any) -> Any:
    order = answer["order"]
    return {
        **answer,
        "order": {
            **order,
            "id": "<order>",
            "payment": {**order["payment"], "razorpayOrderId": "<razorpay order>"},
        },
    }


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
        plain, plain_url = start_plain(server)
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
            simulator = 0.0
            for r in range(1, args.rounds + 1):
                for name, (make, url, pid) in makers.items():
                    todo, rest = rest[: args.batch], rest[args.batch :]
                    before, server_before = cpu_seconds(pid), cpu_seconds(server.proc.pid)
                    result = await run_batch(
                        [make(url, b) for b in todo], concurrency=args.concurrency
                    )
                    cpu[name] += cpu_seconds(pid) - before
                    if name == "plain":  # the simulator answering the plain route's SDK calls
                        simulator += cpu_seconds(server.proc.pid) - server_before
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
            line(
                "  simulator, plain rounds",
                f"server CPU {simulator / (args.rounds * args.batch) * 1e3:.2f} ms/checkout "
                "(the simulated Razorpay runs inside `joycart serve`: included in GraphQL's "
                "figure, not in plain's)",
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
    parser.add_argument("--serve-plain", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_plain:
        serve_plain(args.serve_plain, args.database_url)
    else:
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
