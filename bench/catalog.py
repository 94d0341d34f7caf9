"""`products(first: 50)` with seller and images: GraphQL beside a plain Starlette route.

Seeds 3 sellers x 60 products, each with 1-2 image rows (SQL, not measured), then measures
requests per second of POST /graphql on one `joycart serve` process, and of a plain Starlette
route (`plain_catalog.py`, one uvicorn process) that runs the same three SQL statements
the GraphQL path runs (the page of products, the sellers by id, the images by product id) on
the same database with the same engine settings, and answers the same JSON. The two answers
are compared before anything is measured. GraphQL and plain are measured in alternation
(`--rounds`), and the ratio is GraphQL / plain.

    .venv/bin/python bench/catalog.py [--duration 8] [--rounds 2] [--connections 16]
    .venv/bin/python bench/catalog.py --profile      # cProfile of schema.execute, in process
    SORT=cumulative LINES=60 .venv/bin/python bench/catalog.py --profile   # another listing
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import time

import asyncpg
import httpx
import orjson
from _harness import Server, cpu_seconds, line, start_plain, temp_dir
from _load import LoadResult, load_post
from _seed import asyncpg_dsn, seed_products, seed_users

SELLERS = 3
PER_SELLER = 60
PAGE = 50

QUERY = """{ products(first: 50) { edges { cursor node { id name description
  price { amount currency } stock seller { id name } images { id url } } }
  pageInfo { hasNextPage endCursor } } }"""


async def seed(server: Server) -> None:
    secret = server.secrets()["jwt_secret"]
    conn = await asyncpg.connect(**asyncpg_dsn(server))
    try:
        async with conn.transaction():
            sellers = await seed_users(
                conn, SELLERS, role="SELLER", jwt_secret=secret, prefix="seller"
            )
            ids = await seed_products(conn, [s.id for s in sellers], PER_SELLER, stock=100)
            rng = random.Random(7)
            image_rows = []
            for n, pid in enumerate(ids):
                for k in range(rng.choice((1, 2))):
                    key = f"products/{pid.hex}/{k}.jpg"
                    image_rows.append((pid, key, f"/images/{key}", 48_000 + n, k))
            await conn.executemany(
                "INSERT INTO product_images (id, product_id, store, key, url, content_type, "
                "size_bytes, created_at) VALUES (gen_random_uuid(), $1, 'LOCAL', $2, $3, "
                "'image/jpeg', $4, now() + make_interval(secs => $5))",
                image_rows,
            )
    finally:
        await conn.close()
    line("seeded", f"{SELLERS} sellers, {len(ids)} products, {len(image_rows)} image rows")


def compare(graphql_url: str, plain_url: str) -> None:
    g = httpx.post(graphql_url, json={"query": QUERY}, timeout=10).json()
    p = httpx.post(plain_url, json={"first": PAGE}, timeout=10).json()
    assert "errors" not in g, g
    edges = g["data"]["products"]["edges"]
    assert len(edges) == PAGE, "seed went wrong"
    assert all(e["node"]["images"] for e in edges), "seed went wrong"
    if g["data"] != p:
        raise SystemExit("the plain route's JSON differs from GraphQL's `data`: not comparable")
    line("plain JSON == GraphQL data", f"yes ({len(orjson.dumps(p)):,} bytes, {PAGE} products)")


def measure(args: argparse.Namespace) -> None:
    with temp_dir("joycart-bench-catalog-") as tmp, Server(tmp / "data") as server:
        asyncio.run(seed(server))
        graphql_url = f"{server.url}/graphql"
        plain, plain_url = start_plain("plain_catalog.py", server.database_url, "/products")
        try:
            compare(graphql_url, plain_url)
            g_body = orjson.dumps({"query": QUERY})
            p_body = orjson.dumps({"first": PAGE})
            # Warm both (pools, caches), not counted.
            load_post(graphql_url, g_body, {}, duration=2, connections=args.connections)
            load_post(plain_url, p_body, {}, duration=2, connections=args.connections)
            assert server.proc is not None
            runs: dict[str, list[tuple[LoadResult, float]]] = {"GraphQL": [], "plain": []}
            targets = {
                "GraphQL": (graphql_url, g_body, server.proc.pid),
                "plain": (plain_url, p_body, plain.pid),
            }
            for r in range(1, args.rounds + 1):
                for name, (url, body, pid) in targets.items():
                    cpu = cpu_seconds(pid)
                    result = load_post(
                        url, body, {}, duration=args.duration, connections=args.connections
                    )
                    cpu = cpu_seconds(pid) - cpu
                    runs[name].append((result, cpu))
                    line(f"round {r}: {name}", result.describe())
            rates = {}
            for name, results in runs.items():
                requests = sum(x.requests for x, _ in results)
                rates[name] = requests / sum(x.seconds for x, _ in results)
                cpu_ms = sum(c for _, c in results) / requests * 1e3
                line(
                    f"{name}, 1 process",
                    f"{rates[name]:,.0f} req/s, server CPU {cpu_ms:.2f} ms/request",
                )
            line("ratio GraphQL / plain", f"{rates['GraphQL'] / rates['plain']:.2f}")
            g_runs = [x for x, _ in runs["GraphQL"]]
            p_runs = [x for x, _ in runs["plain"]]
            bad = sum(x.non_2xx + x.errors for x in g_runs + p_runs)
            if bad:
                line("WARNING", f"{bad} non-2xx answers or socket errors")
            compare(graphql_url, plain_url)
        finally:
            plain.terminate()
            plain.wait(30)


async def _profile(server: Server, requests: int) -> None:
    from joycart.bootstrap import build_services
    from joycart.config import Settings, resolve_settings
    from joycart.schema import schema
    from joycart.schema.context import Context

    settings = resolve_settings(Settings(data_dir=server.data_dir))
    services = build_services(settings, database_url=server.database_url)
    try:

        async def once() -> None:
            ctx = Context(request=None, response=None, services=services)
            result = await schema.execute(QUERY, context_value=ctx)
            assert not result.errors, result.errors
            orjson.dumps(result.data)

        for _ in range(50):
            await once()
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for _ in range(requests):
            await once()
        profiler.disable()
        took = time.perf_counter() - start
        line("in-process schema.execute (profiled)", f"{took / requests * 1e3:.2f} ms/request")
        out = io.StringIO()
        order, lines = os.environ.get("SORT", "tottime"), int(os.environ.get("LINES", "25"))
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
        print(out.getvalue())
        start = time.perf_counter()
        for _ in range(requests):
            await once()
        took = time.perf_counter() - start
        line("in-process schema.execute (unprofiled)", f"{took / requests * 1e3:.2f} ms/request")
    finally:
        await services.close()


def profile(requests: int) -> None:
    with temp_dir("joycart-bench-profile-") as tmp, Server(tmp / "data") as server:
        asyncio.run(seed(server))
        asyncio.run(_profile(server, requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating GraphQL/plain rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="cProfile schema.execute instead")
    parser.add_argument("--profile-requests", type=int, default=300)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile_requests)
    else:
        measure(args)


if __name__ == "__main__":
    main()
