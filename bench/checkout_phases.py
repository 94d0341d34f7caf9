"""Where a checkout's server CPU goes: JoyCart's app and the plain route, in this process.

Starts `joycart serve` only for its database and simulated Razorpay, seeds buyers like
`checkout_yardstick.py`, then sends checkouts one at a time through an in-process ASGI client to
JoyCart's app and to the plain route of `plain_checkout.py`, batches alternating. It prints the
main thread's CPU per checkout of each side (`time.thread_time`: the SDK's worker thread and the
simulator, in the server process, are not counted; the in-process client is, on both sides),
and for JoyCart the CPU spent inside each step of a checkout (a step's figure includes the steps
it calls). One at a time, a step's CPU is its own: nothing else runs on the loop meanwhile.

    .venv/bin/python bench/checkout_phases.py [--batch 100] [--rounds 3]

Run it with the worktree first on `PYTHONPATH` when the virtualenv's editable install points at
another checkout, or it measures that checkout's code.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, redirect_stderr
from typing import Any, TextIO

import httpx
from _harness import Server, line, temp_dir
from checkout import checkout_request
from checkout_yardstick import plain_request, seed

# (module, attribute, label): the steps whose CPU is summed; a step includes what it calls.
STEPS = [
    ("joycart.schema.context", "Context._load_user", "account: token and account read"),
    ("joycart.resolvers.checkout", "checkout", "checkout resolver (all below)"),
    ("joycart.resolvers.checkout", "place_order", "  the order's transaction"),
    ("joycart.resolvers.payment_sessions", "open_gateway_session", "  Razorpay order (all below)"),
    ("joycart.resolvers.payment_sessions", "external_call_lock_with", "    lease + attempt claim"),
    ("joycart.resolvers.payment_sessions", "_write_gateway_order", "    result written"),
    ("joycart.resolvers.events", "record_now", "  order events and their log lines"),
]
spent: defaultdict[str, float] = defaultdict(float)


def _step(fn: Callable[..., Awaitable[Any]], label: str) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def step(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return await fn(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started

    return step


def _entered(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
    """For a context manager: the CPU of entering it."""

    @asynccontextmanager
    async def entered(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        started = time.thread_time()
        async with fn(*args, **kwargs) as held:
            spent[label] += time.thread_time() - started
            yield held

    return entered


def _instrument() -> None:
    for module_name, path, label in STEPS:
        owner: Any = importlib.import_module(module_name)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        fn = getattr(owner, name)
        wrap = _entered if hasattr(fn, "__wrapped__") else _step  # @asynccontextmanager
        setattr(owner, name, wrap(fn, label))


async def measure(args: argparse.Namespace, sink: TextIO) -> None:
    with temp_dir("joycart-bench-checkout-phases-") as tmp, Server(tmp / "data") as server:
        buyers = await seed(server, 2 * (args.batch * args.rounds + 20))
        os.environ.update(JOYCART_DATA_DIR=str(server.data_dir), JOYCART_ENV="development")
        os.environ.update(server.razorpay.env())  # the simulator process the server uses
        from plain_checkout import plain_app

        from joycart.app import create_app
        from joycart.bootstrap import build_services
        from joycart.config import Settings, resolve_settings
        from joycart.observability import logs

        settings = resolve_settings(Settings())
        with redirect_stderr(sink):  # lines formatted as `serve` formats them, written nowhere
            logs.configure(json=True, level="INFO")
        simulator = server.razorpay.url
        services = build_services(
            settings, database_url=server.database_url, razorpay_api_url=simulator
        )
        secrets = server.secrets()
        config = {
            "jwt_secret": secrets["jwt_secret"],
            "key_id": server.razorpay.key_id,
            "key_secret": secrets["razorpay_key_secret"],
            "url": simulator,
            "timeout": "10",
        }
        sides = {
            "GraphQL": (create_app(services), checkout_request, "http://bench/graphql"),
            "plain": (
                plain_app(server.database_url, config),
                plain_request,
                "http://bench/checkout",
            ),
        }
        _instrument()
        cpu = dict.fromkeys(sides, 0.0)
        rest = buyers
        for round_no in range(args.rounds + 1):  # round 0 warms up, uncounted
            for name, (app, make, url) in sides.items():
                size = 20 if round_no == 0 else args.batch
                todo, rest = rest[:size], rest[size:]
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
                async with httpx.AsyncClient(transport=transport) as client:
                    sends = [make(url, buyer) for buyer in todo]
                    started = time.thread_time()
                    answers = [(await send(client)).json() for send in sends]
                    took = time.thread_time() - started
                for answer in answers:  # each with its Razorpay order, or nothing counts
                    order = (answer["data"]["checkout"] if name == "GraphQL" else answer)["order"]
                    assert order["payment"]["razorpayOrderId"], answer
                if round_no == 0:
                    spent.clear()
                else:
                    cpu[name] += took
        count = args.batch * args.rounds
        for name, seconds in cpu.items():
            line(f"{name}, main thread", f"{seconds / count * 1e3:.2f} ms CPU per checkout")
        line("plain / GraphQL", f"{cpu['plain'] / cpu['GraphQL']:.2f}")
        for _, _, label in STEPS:
            line(f"  {label}", f"{spent[label] / count * 1e3:.2f} ms")
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=100, help="checkouts per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    with open(os.devnull, "w") as sink:
        asyncio.run(measure(parser.parse_args(), sink))


if __name__ == "__main__":
    main()
