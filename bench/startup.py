"""Cold and warm start of `joycart serve`, then `me` requests per second on one process.

Cold: the first `serve` on an empty data dir (initdb, PostgreSQL start, migrations) until
POST /graphql answers `{ __typename }`. Warm: the same data dir started again, 3 times.
Then one account is registered over GraphQL and `{ me { id email } }` is posted with its Bearer
token for ~10 s (wrk, or the asyncio+httpx fallback).

    .venv/bin/python bench/startup.py [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import uuid

from _harness import Server, cpu_seconds, gql, line, temp_dir
from _load import load_post

REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
    accessToken user { id email } errors { code message field } } }"""
ME = "{ me { id email } }"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of `me` load")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()

    with temp_dir("joycart-bench-startup-") as tmp:
        data_dir = tmp / "data"
        server = Server(data_dir)
        server.start()
        cold = server.wait_graphql()
        server.wait_ready()
        line("cold start (empty data dir -> /graphql)", f"{cold:.2f} s")
        line("  stop", server.stop())

        warm: list[float] = []
        for run in range(1, args.warm_runs + 1):
            server = Server(data_dir)
            server.start()
            warm.append(server.wait_graphql())
            server.wait_ready()
            line(f"warm start #{run} (same data dir -> /graphql)", f"{warm[-1]:.2f} s")
            line("  stop", server.stop())
        line(
            "warm start median / min / max",
            f"{statistics.median(warm):.2f} s / {min(warm):.2f} s / {max(warm):.2f} s",
        )

        with Server(data_dir) as server:
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            payload = gql(
                server.url,
                REGISTER,
                {"input": {"email": email, "password": "correct horse battery", "name": "Bench"}},
            )["register"]
            assert payload["errors"] == [], payload
            token = payload["accessToken"]
            me = gql(server.url, ME, token=token)["me"]
            assert me == payload["user"], (me, payload["user"])
            body = json.dumps({"query": ME}).encode()
            assert server.proc is not None
            cpu = cpu_seconds(server.proc.pid)
            result = load_post(
                f"{server.url}/graphql",
                body,
                {"Authorization": f"Bearer {token}"},
                duration=args.duration,
                connections=args.connections,
            )
            cpu = cpu_seconds(server.proc.pid) - cpu
            line(f"me, 1 process, {args.connections} connections", result.describe())
            line("  server CPU", f"{cpu / max(result.requests, 1) * 1e3:.2f} ms per request")
            # The load must not have broken the account: `me` still answers the same.
            assert gql(server.url, ME, token=token)["me"] == me


if __name__ == "__main__":
    main()
