"""Load generation for the benchmarks: `wrk` when it is on PATH (a Lua script written into a temp
dir sets the POST body and headers), otherwise a small asyncio + httpx generator
(`LoadResult.tool` says which ran); and fixed batches of distinct requests (`run_batch`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _harness import temp_dir


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        text = f"{self.rps:,.0f} req/s ({self.requests} in {self.seconds:.1f} s"
        if self.latency_p50_ms is not None and self.latency_p99_ms is not None:
            text += f", p50 {self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms"
        text += f", non-2xx {self.non_2xx}, errors {self.errors}) [{self.tool}]"
        return text


def load_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    duration: float = 10.0,
    connections: int = 16,
) -> LoadResult:
    """Requests per second of one POST repeated for `duration` seconds.

    `wrk` when it is on PATH, unless `JOYCART_BENCH_TOOL=httpx` asks for the fallback.
    """
    if shutil.which("wrk") and os.environ.get("JOYCART_BENCH_TOOL", "auto") != "httpx":
        return _wrk_post(url, body, headers, duration=duration, connections=connections)
    return asyncio.run(_httpx_post(url, body, headers, duration=duration, connections=connections))


_LUA = """local f = assert(io.open({body_path!r}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
{headers}
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    assert m, value
    return float(m.group(1)) * _UNITS[m.group(2)]


def _wrk_post(
    url: str, body: bytes, headers: dict[str, str], *, duration: float, connections: int
) -> LoadResult:
    with temp_dir("joycart-wrk-") as tmp:
        body_path = tmp / "body.json"
        body_path.write_bytes(body)
        all_headers = {"Content-Type": "application/json", **headers}
        header_lines = "\n".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in all_headers.items()
        )
        script = tmp / "post.lua"
        script.write_text(_LUA.format(body_path=str(body_path), headers=header_lines))
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        ).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    assert m, out
    seconds = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    return LoadResult(
        tool="wrk",
        requests=int(m.group(1)),
        seconds=seconds,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
        latency_p50_ms=_ms(p50.group(1)) if p50 else None,
        latency_p99_ms=_ms(p99.group(1)) if p99 else None,
    )


async def _httpx_post(
    url: str, body: bytes, headers: dict[str, str], *, duration: float, connections: int
) -> LoadResult:
    all_headers = {"Content-Type": "application/json", **headers}
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers=all_headers)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if not r.is_success:
                    counts["non_2xx"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float | None:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3 if latencies else None
        )

    return LoadResult(
        tool="asyncio+httpx",
        requests=len(latencies),
        seconds=seconds,
        non_2xx=counts["non_2xx"],
        errors=counts["errors"],
        latency_p50_ms=pct(0.50),
        latency_p99_ms=pct(0.99),
    )


# ---------------------------------------------------------------------------------------------
# A fixed batch of distinct requests at a bounded concurrency (checkouts, webhooks).


@dataclass
class BatchResult:
    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    bodies: list[Any] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def run_batch(
    requests: Sequence[Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]],
    *,
    concurrency: int = 32,
) -> BatchResult:
    """Send every request once, at most `concurrency` at a time; keeps each JSON answer."""
    result = BatchResult(seconds=0.0, bodies=[None] * len(requests))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    r = await requests[i](client)
                except httpx.HTTPError as err:
                    result.transport_errors += 1
                    result.bodies[i] = repr(err)
                    continue
                result.statuses[r.status_code] = result.statuses.get(r.status_code, 0) + 1
                try:
                    result.bodies[i] = r.json()
                except ValueError:
                    result.bodies[i] = r.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


# Process limits and memory, for the many-socket benchmark (subscriptions.py).


def rss_kib(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target
