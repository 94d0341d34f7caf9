"""One command, one summary: the catalogue, checkout and webhook yardsticks, `--workers 2` vs 1.

    python3 bench/run.py [--only catalog|checkout|webhook|workers2] [--duration 6] [--rounds 3]

Re-executes itself under the worktree's `.venv/bin/python` when that exists. Ends with one
`ratio <path> <value>` line per path: catalog = GraphQL req/s / plain-route req/s (median of
alternating rounds), checkout = GraphQL checkouts/s / the plain route's, webhook = JoyCart's
`/webhooks/razorpay` captures applied/s / the plain route's (both medians of alternating
rounds), workers2 = GraphQL req/s with `--workers 2` / with `--workers 1`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PY = HERE.parent / ".venv" / "bin" / "python"

if VENV_PY.exists() and Path(sys.prefix).resolve() != VENV_PY.parent.parent.resolve():
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])  # noqa: S606 (no shell on purpose)

sys.path.insert(0, str(HERE))

import orjson  # noqa: E402
from _harness import Server, line, temp_dir  # noqa: E402
from _load import load_post  # noqa: E402

PATHS = ("catalog", "checkout", "webhook", "workers2")


def run_yardstick(
    path: str, script: str, side: str, rate: str, unit: str, options: list[str]
) -> tuple[str, list[str]]:
    """A comparison script in its own process; its per-round rates give the median ratio of
    `side` (GraphQL or JoyCart's route) to the plain route."""
    out = subprocess.run(
        [sys.executable, str(HERE / script), *options],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print(out, end="", flush=True)
    ours = [float(x.replace(",", "")) for x in re.findall(rf"{side}\s+([\d,.]+) {rate}", out)]
    plain = [float(x.replace(",", "")) for x in re.findall(rf"plain\s+([\d,.]+) {rate}", out)]
    ratios = [a / b for a, b in zip(ours, plain, strict=True)]
    cpu = re.findall(rf"^({side}|plain), 1 process.*?server CPU ([\d.]+) ms", out, re.M)
    extra = [f"cpu {path} {name} {ms} ms/{unit}" for name, ms in cpu]
    return f"{statistics.median(ratios):.2f}", extra


def run_workers2(duration: float, rounds: int) -> tuple[str, list[str]]:
    """Catalogue GraphQL req/s with `--workers 2` over `--workers 1`, alternating servers."""
    import catalog

    body = orjson.dumps({"query": catalog.QUERY})
    rates: dict[str, list[float]] = {"1": [], "2": []}
    with temp_dir("joycart-bench-workers-") as tmp:
        with Server(tmp / "data") as one:
            asyncio.run(catalog.seed(one))
        for r in range(1, rounds + 1):
            for n in ("1", "2"):
                with Server(tmp / "data", extra_args=["--workers", n]) as server:
                    url = f"{server.url}/graphql"
                    load_post(url, body, {}, duration=2)
                    result = load_post(url, body, {}, duration=duration)
                    rates[n].append(result.rps)
                    line(f"round {r}: --workers {n}", result.describe())
    return f"{statistics.median(rates['2']) / statistics.median(rates['1']):.2f}", []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=PATHS, action="append")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chosen = args.only or list(PATHS)
    summary: list[str] = []
    rounds = ["--rounds", str(args.rounds)]
    for path in chosen:
        print(f"== {path}", flush=True)
        if path == "catalog":
            ratio, extra = run_yardstick(
                "catalog",
                "catalog.py",
                "GraphQL",
                "req/s",
                "request",
                ["--duration", str(args.duration), "--rounds", str(args.rounds)],
            )
        elif path == "webhook":
            ratio, extra = run_yardstick(
                "webhook", "webhook.py", "JoyCart", "applied/s", "webhook", rounds
            )
        elif path == "checkout":
            ratio, extra = run_yardstick(
                "checkout", "checkout_yardstick.py", "GraphQL", "checkouts/s", "checkout", rounds
            )
        elif path == "workers2":
            ratio, extra = run_workers2(args.duration, args.rounds)
        else:
            raise AssertionError(path)
        summary += extra
        summary.append(f"ratio {path} {ratio}")
    print("\n".join(summary), flush=True)


if __name__ == "__main__":
    main()
