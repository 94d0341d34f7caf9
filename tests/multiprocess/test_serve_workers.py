"""`joycart serve --workers 2` as an operator runs it: one port, two API processes, one background
worker, its own embedded PostgreSQL; metrics that add up across processes, JSON logs that tell
one order's story, and a SIGTERM that drains every accepted request and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.helpers import Account, Api
from tests.multiprocess.conftest import process_env
from tests.multiprocess.harness import HttpServe, alive

pytestmark = pytest.mark.slow

CHECKOUT = """mutation Checkout($key: String!) { checkout(idempotencyKey: $key) {
  order { id status items { id } payment { razorpayOrderId } } errors { code } } }"""
CANCEL = """mutation CancelOne($id: ID!) { cancelItem(orderItemId: $id, quantity: 1) {
  refund { id status gatewayRefundId } errors { code } } }"""


@pytest.fixture(scope="module")
def served(razorpay: RazorpaySimulator) -> Iterator[HttpServe]:
    """`joycart serve --workers 2` with no database configured: it starts its own."""
    work = Path(tempfile.mkdtemp(prefix="joycart-workers-"))
    env = process_env(razorpay, work / "data") | {"JOYCART_DRAIN_SECONDS": "20"}
    server = HttpServe("serve-workers-2", ["--workers", "2"], env, work)
    try:
        server.wait_http(server.url)
        yield server
    finally:
        server.stop()
        pid_file = _postmaster_pid_file(server)
        if pid_file.exists():  # never leave a database behind, whatever a test did
            postmaster = int(pid_file.read_text().split()[0])
            if alive(postmaster):
                os.kill(postmaster, signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


def _postmaster_pid_file(server: HttpServe) -> Path:
    return server.log_path.parent / "data" / "postgres" / "postmaster.pid"


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
    return sum(
        v for n, got, v in samples if n == name and all(got.get(k) == w for k, w in labels.items())
    )


def per_pid(samples: list[tuple[str, dict[str, str], float]], name: str) -> dict[int, float]:
    return {int(labels["pid"]): v for n, labels, v in samples if n == name}


def _until_both_answer(served: HttpServe) -> tuple[int, dict[int, float]]:
    """Requests on new connections until both API processes have answered one (a process that
    never answers is the failure). Returns how many were sent and who served how many."""
    sent = 0
    served_by: dict[int, float] = {}
    for _ in range(60):
        for _ in range(5):
            assert httpx.get(f"{served.url}/healthz", timeout=10).status_code == 200
            sent += 1
        counts = per_pid(scrape(served.url), "joycart_process_requests_served")
        served_by = {pid: n for pid, n in counts.items() if n > 0}
        if len(served_by) >= 2:
            break
    assert len(served_by) == 2, served_by
    return sent, served_by


def test_two_api_processes_share_the_port_and_the_worker_runs_once(served: HttpServe) -> None:
    before = scrape(served.url)
    sent, served_by = _until_both_answer(served)
    assert served.pid not in served_by  # the supervisor answers nothing itself

    after = scrape(served.url)
    healthz = {"route": "/healthz", "method": "GET", "status": "2xx"}
    counted = value(after, "joycart_http_request_duration_seconds_count", **healthz) - value(
        before, "joycart_http_request_duration_seconds_count", **healthz
    )
    assert counted == sent  # every process's requests, added up in one scrape

    running = {pid: v for pid, v in per_pid(after, "joycart_worker_running").items() if v == 1}
    assert list(running) == [served.pid]  # once, in the supervisor, in no API process
    started = [line for line in served.json_lines() if line.get("event") == "worker started"]
    assert len(started) == 1


def test_a_burst_of_keep_alive_connections_is_spread_over_both_api_processes(
    served: HttpServe,
) -> None:
    """A proxy's keep-alive pool opens its connections in a burst and keeps them. With one shared
    listening socket the first process to wake accepted the whole burst (99 % CPU against 1 %
    under load); with a socket per process the kernel spreads them. 32 connections are all
    established (in the listen queues) before any request is sent; each sends 3 requests."""
    _until_both_answer(served)  # both processes listening
    host, port = served.url.removeprefix("http://").split(":")
    before = per_pid(scrape(served.url), "joycart_process_requests_served")
    connections = [socket.create_connection((host, int(port)), timeout=10) for _ in range(32)]
    try:
        for _ in range(3):
            for conn in connections:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: joycart\r\n\r\n")
            for conn in connections:
                _read_response(conn)
    finally:
        for conn in connections:
            conn.close()
    after = per_pid(scrape(served.url), "joycart_process_requests_served")
    served_now = {pid: n - before.get(pid, 0) for pid, n in after.items() if pid != served.pid}
    assert sum(served_now.values()) >= 96, served_now
    # Each process holds each connection with probability 1/2 (the kernel hashes the 4-tuple):
    # at least 6 of 32 each fails by chance about once in 10,000 runs.
    assert len(served_now) == 2, served_now
    assert min(served_now.values()) >= 6 * 3, served_now


def _api_processes(served: HttpServe) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if ppid == served.pid and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def test_a_killed_api_process_is_replaced_on_its_socket_and_no_connection_is_refused(
    served: HttpServe,
) -> None:
    """SIGKILL one API process: the supervisor starts another on the same socket. Connections
    the kernel sent to that socket meanwhile wait in its queue (the parent keeps it open) and
    are answered by the replacement; none is refused or dropped."""
    _until_both_answer(served)
    first = _api_processes(served)
    assert len(first) == 2, first
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    host, port = served.url.removeprefix("http://").split(":")
    connections = [socket.create_connection((host, int(port)), timeout=30) for _ in range(32)]
    try:
        for conn in connections:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: joycart\r\n\r\n")
        for conn in connections:
            _read_response(conn)  # about half of them wait for the replacement
    finally:
        for conn in connections:
            conn.close()
    now = _api_processes(served)
    assert len(now) == 2, now
    assert victim not in now
    assert first - {victim} < now
    replacement = (now - first).pop()
    counts = per_pid(scrape(served.url), "joycart_process_requests_served")
    assert counts.get(replacement, 0) > 0, counts  # it serves: the socket was handed on
    assert victim not in counts  # its live gauges were dropped


def _read_response(conn: socket.socket) -> None:
    """One HTTP/1.1 response with a Content-Length body, read off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(4096)
        assert chunk, "the server closed the connection"
        body += chunk
    assert len(body) == length  # nothing else was sent on this connection


async def _shop(api: Api, *, quantity: int = 2) -> tuple[Account, str]:
    seller = await api.register("SELLER")
    product = await api.create_product(seller, price=25_000, stock=50, name="Masala chai")
    buyer = await api.register("USER")
    await api.add_to_cart(buyer, product, quantity)
    return buyer, product


async def _checkout(api: Api, buyer: Account) -> dict[str, Any]:
    data = await api.gql(CHECKOUT, {"key": f"k-{uuid.uuid4().hex}"}, buyer.token)
    assert data["checkout"]["errors"] == []
    order: dict[str, Any] = data["checkout"]["order"]
    return order


async def _pay(razorpay: RazorpaySimulator, url: str, rzp_order: str) -> None:
    for delivery in razorpay.pay(rzp_order):
        assert await razorpay.deliver_async(delivery, f"{url}/webhooks/razorpay") == 200


async def test_metrics_show_checkout_capture_cancel_and_the_stuck_refund(
    served: HttpServe, razorpay: RazorpaySimulator
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        api = Api(http)
        buyer, _ = await _shop(api)
        before = scrape(served.url)
        order = await _checkout(api, buyer)
        await _pay(razorpay, served.url, order["payment"]["razorpayOrderId"])
        razorpay.inject("POST", "/v1/payments/", "500", times=1000)  # every refund call fails
        cancel = await api.gql(CANCEL, {"id": order["items"][0]["id"]}, buyer.token)
        assert cancel["cancelItem"]["refund"]["status"] == "INITIATED"
        after = scrape(served.url)
        razorpay.clear_faults()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    graphql = {"route": "/graphql", "method": "POST", "status": "2xx"}
    assert grew("joycart_http_request_duration_seconds_count", **graphql) >= 2
    assert grew("joycart_graphql_operation_duration_seconds_count", operation="Checkout") == 1
    assert grew("joycart_graphql_operation_duration_seconds_count", operation="CancelOne") == 1
    assert grew("joycart_checkouts_total", outcome="placed") == 1
    captured = {"event": "payment.captured"}
    assert grew("joycart_webhooks_received_total", outcome="applied", **captured) == 1
    assert grew("joycart_webhook_lag_seconds_count", **captured) == 1
    assert value(after, "joycart_jobs", kind="submit_refund", state="PENDING") == 1
    assert value(after, "joycart_refunds_initiated", age="0-5m") == 1
    assert value(after, "joycart_database_up") == 1


async def test_one_order_is_followed_through_the_json_logs_by_its_id(
    served: HttpServe, razorpay: RazorpaySimulator
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        api = Api(http)
        buyer, _ = await _shop(api, quantity=1)
        order = await _checkout(api, buyer)
        await _pay(razorpay, served.url, order["payment"]["razorpayOrderId"])
        cancel = await api.gql(CANCEL, {"id": order["items"][0]["id"]}, buyer.token)
        refund = cancel["cancelItem"]["refund"]
        assert refund["gatewayRefundId"]
        for delivery in razorpay.process_refund(refund["gatewayRefundId"]):
            url = f"{served.url}/webhooks/razorpay"
            assert await razorpay.deliver_async(delivery, url) == 200

    story = [line for line in served.json_lines() if line.get("order_id") == order["id"]]
    told = " | ".join(str(line["event"]) for line in story)
    chapters = (
        "ORDER_PLACED",
        "PAYMENT_SESSION_OPENED",
        "PAYMENT_CAPTURED",
        "ITEM_CANCELLED",
        "REFUND_INITIATED",
        "REFUND_SUBMITTED",
        "REFUND_PROCESSED",
    )
    positions = [told.find(chapter) for chapter in chapters]
    assert -1 not in positions, told
    assert positions == sorted(positions), told
    assert all(line.get("request_id") for line in story)
    assert not [line for line in story if line["logger"] == "uvicorn.access"]  # one line each
    by_chapter = {c: next(line for line in story if c in line["event"]) for c in chapters}
    assert [by_chapter[c]["event_kind"] for c in chapters] == list(chapters)
    assert by_chapter["ORDER_PLACED"]["user_id"] == buyer.id
    assert by_chapter["PAYMENT_CAPTURED"]["webhook_event_id"]
    assert by_chapter["REFUND_PROCESSED"]["refund_id"] == refund["id"]
    assert by_chapter["REFUND_PROCESSED"]["webhook_event_id"]


async def test_sigterm_drains_every_accepted_request_then_leaves_nothing_running(
    served: HttpServe, razorpay: RazorpaySimulator
) -> None:
    in_flight = 6
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        api = Api(http)
        buyers = [(await _shop(api, quantity=1))[0] for _ in range(in_flight)]
    pids = set(per_pid(scrape(served.url), "joycart_process_requests_served"))
    pid_file = _postmaster_pid_file(served)
    postmaster = int(pid_file.read_text().split()[0])

    # Each checkout waits 3 s at Razorpay: they are inside the API processes when SIGTERM comes.
    razorpay.inject("POST", "/v1/orders", "slow", times=in_flight, delay=3.0)

    async def checkout(buyer: Account) -> httpx.Response:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as own:
            return await own.post(
                "/graphql",
                json={"query": CHECKOUT, "variables": {"key": f"drain-{uuid.uuid4().hex}"}},
                headers={"Authorization": f"Bearer {buyer.token}"},
            )

    stop_load = asyncio.Event()
    load_answers: dict[str, httpx.Response] = {}
    load_failures: dict[str, Exception] = {}

    async def load() -> None:
        # Each request names itself (127.0.0.1 is a trusted proxy): the server's log says later
        # whether the app ever took it in.
        while not stop_load.is_set():
            request_id = f"load-{uuid.uuid4().hex}"
            try:
                async with httpx.AsyncClient(base_url=served.url, timeout=30) as own:
                    load_answers[request_id] = await own.post(
                        "/graphql",
                        json={"query": "{ __typename }"},
                        headers={"X-Request-Id": request_id},
                    )
            except httpx.TransportError as exc:
                load_failures[request_id] = exc
                if isinstance(exc, httpx.ConnectError):
                    return  # nobody accepts any more: the drain has begun
                await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(checkout(b)) for b in buyers]
    loaders = [asyncio.create_task(load()) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(razorpay.requests_to("POST", "/v1/orders")) < in_flight:
        assert time.monotonic() < deadline, "the checkouts never reached Razorpay"
        await asyncio.sleep(0.05)

    served.proc.send_signal(signal.SIGTERM)
    answers = await asyncio.gather(*tasks)
    for answer in answers:  # accepted before the signal: answered in full
        assert answer.status_code == 200, answer.text
        body = answer.json()["data"]["checkout"]
        assert body["errors"] == []
        assert body["order"]["payment"]["razorpayOrderId"]
    code = await asyncio.to_thread(served.proc.wait, 60)
    stop_load.set()
    await asyncio.gather(*loaders)

    taken_in = {
        line["request_id"]
        for line in served.json_lines()
        if line["logger"] == "joycart.access" and line["request_id"].startswith("load-")
    }
    for request_id, response in load_answers.items():  # answered: answered completely
        assert request_id in taken_in
        assert response.status_code == 200
        assert response.json() == {"data": {"__typename": "Query"}}
    # Refused or reset before the app took them in; none that the app took in was lost.
    lost = taken_in & set(load_failures)
    assert not lost, {k: repr(load_failures[k]) for k in lost}
    assert load_answers  # there was load while the drain began
    assert code == 0
    assert not [pid for pid in {*pids, served.pid, postmaster} if alive(pid)]
    assert not pid_file.exists()


def test_ctrl_c_stops_every_process_of_the_group_and_the_database(
    razorpay: RazorpaySimulator,
) -> None:
    work = Path(tempfile.mkdtemp(prefix="joycart-ctrl-c-"))
    env = process_env(razorpay, work / "data")
    server = HttpServe("serve-ctrl-c", ["--workers", "2"], env, work, own_group=True)
    try:
        server.wait_http(server.url)
        pids = set(per_pid(scrape(server.url), "joycart_process_requests_served"))
        postmaster = int(_postmaster_pid_file(server).read_text().split()[0])
        os.killpg(server.pid, signal.SIGINT)  # what a terminal sends its foreground job
        assert server.proc.wait(timeout=60) == 0
        assert not [pid for pid in {*pids, postmaster} if alive(pid)]
        assert not _postmaster_pid_file(server).exists()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
