"""Brute force: logins and registrations are limited per email and per client address, and the
client's address is taken from X-Forwarded-For only when a trusted proxy sends it.

The app runs as `joycart serve` runs it (`serving.server_config`; the app applies uvicorn's
proxy-headers layer with JOYCART_TRUSTED_PROXIES itself), called in process with the peer
address each test chooses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from joycart.app import create_app
from joycart.bootstrap import Services, build_services
from joycart.integrations.simulators.razorpay import RazorpaySimulator
from joycart.resolvers import limits
from joycart.serving import server_config
from joycart.worker import run_once
from tests.conftest import make_settings
from tests.helpers import Api

PROXY = "10.0.0.7"  # the load balancer in front of the API
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
    accessToken errors { code message } } }"""
REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
    user { id } errors { code message } } }"""

Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def limited(
    database_url: str, data_dir: Path, razorpay: RazorpaySimulator
) -> AsyncIterator[tuple[Services, Client]]:
    """Services with rate limits on, and clients that connect from a chosen peer address."""
    settings = make_settings(data_dir, rate_limits="on", trusted_proxies=f"127.0.0.1, {PROXY}")
    services = build_services(
        settings, database_url=database_url, razorpay_api_url=razorpay.base_url
    )
    config = server_config(create_app(services), settings, host="127.0.0.1", port=0)
    config.load()
    app = config.loaded_app

    def client(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(peer, 40_000))
        return httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60)

    yield services, client
    await services.close()


async def _login(client: httpx.AsyncClient, email: str, forwarded_for: str | None = None) -> str:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    variables = {"input": {"email": email, "password": "not the password"}}
    response = await client.post(
        "/graphql", json={"query": LOGIN, "variables": variables}, headers=headers
    )
    (error,) = response.json()["data"]["login"]["errors"]
    code: str = error["code"]
    if code == "RATE_LIMITED":
        assert "try again in" in error["message"], error
    return code


async def test_twenty_wrong_passwords_on_one_email_are_cut_off(
    api: Api, limited: tuple[Services, Client]
) -> None:
    account = await api.register()
    _, client = limited
    async with client("203.0.113.5") as peer:
        codes = [await _login(peer, account.email) for _ in range(20)]
        # Another letter case is the same email.
        assert await _login(peer, account.email.upper()) == "RATE_LIMITED"
    assert codes == ["INVALID_CREDENTIALS"] * 10 + ["RATE_LIMITED"] * 10


async def test_a_hundred_emails_from_one_address_are_cut_off_whatever_it_forwards(
    limited: tuple[Services, Client],
) -> None:
    _, client = limited
    emails = [f"victim-{n}@example.com" for n in range(100)]
    async with client("203.0.113.9") as untrusted:
        # The attacker claims another address on every request: an untrusted peer's
        # X-Forwarded-For changes nothing.
        codes = await asyncio.gather(
            *(_login(untrusted, e, forwarded_for=f"198.51.100.{n}") for n, e in enumerate(emails))
        )
    allowed = limits.LOGIN_PER_ADDRESS.maximum
    assert sorted(codes) == ["INVALID_CREDENTIALS"] * allowed + ["RATE_LIMITED"] * (100 - allowed)


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    limited: tuple[Services, Client],
) -> None:
    _, client = limited
    allowed = limits.LOGIN_PER_ADDRESS.maximum
    emails = [f"shopper-{n}@example.com" for n in range(allowed + 10)]
    async with client(PROXY) as proxy:
        # Many clients behind the balancer: each is counted on its own address...
        spread = await asyncio.gather(
            *(_login(proxy, e, forwarded_for=f"198.51.100.{n}") for n, e in enumerate(emails))
        )
        # ...and one client behind it, however many emails it tries, is cut off.
        one = await asyncio.gather(
            *(_login(proxy, f"x{e}", forwarded_for="192.0.2.1, 10.0.0.7") for e in emails)
        )
    assert spread == ["INVALID_CREDENTIALS"] * len(emails)
    assert sorted(one) == ["INVALID_CREDENTIALS"] * allowed + ["RATE_LIMITED"] * 10


async def test_registrations_are_limited_per_email_and_per_address(
    limited: tuple[Services, Client],
) -> None:
    _, client = limited

    async def register(peer: httpx.AsyncClient, email: str) -> str:
        variables = {"input": {"email": email, "password": "correct horse battery", "name": "R"}}
        response = await peer.post("/graphql", json={"query": REGISTER, "variables": variables})
        errors = response.json()["data"]["register"]["errors"]
        return str(errors[0]["code"]) if errors else "OK"

    async with client("203.0.113.20") as peer:
        same = [await register(peer, "twice@example.com") for _ in range(6)]
    assert same == ["OK"] + ["EMAIL_TAKEN"] * 4 + ["RATE_LIMITED"]
    async with client("203.0.113.21") as peer:
        many = [await register(peer, f"new-{uuid.uuid4().hex[:8]}@example.com") for _ in range(21)]
    assert many == ["OK"] * 20 + ["RATE_LIMITED"]


async def test_confirm_payment_is_limited_per_account(
    api: Api, limited: tuple[Services, Client]
) -> None:
    seller = await api.register("SELLER")
    buyer = await api.register()
    await api.add_to_cart(buyer, await api.create_product(seller))
    order = (await api.checkout(buyer))["order"]
    _, client = limited
    confirm = """mutation($id: ID!, $input: ConfirmPaymentInput!) {
        confirmPayment(orderId: $id, input: $input) { errors { code message } } }"""
    variables: dict[str, Any] = {
        "id": order["id"],
        "input": {
            "razorpayOrderId": order["payment"]["razorpayOrderId"],
            "razorpayPaymentId": "pay_forged",
            "razorpaySignature": "0" * 64,
        },
    }
    codes = []
    async with client("203.0.113.30") as peer:
        for _ in range(limits.CONFIRM_PAYMENT_PER_USER.maximum + 1):
            response = await peer.post(
                "/graphql",
                json={"query": confirm, "variables": variables},
                headers={"Authorization": f"Bearer {buyer.token}"},
            )
            codes.append(response.json()["data"]["confirmPayment"]["errors"][0]["code"])
    assert "RATE_LIMITED" not in codes[:-1]
    assert codes[-1] == "RATE_LIMITED"


async def test_the_worker_prunes_windows_that_ended_long_ago(
    limited: tuple[Services, Client],
) -> None:
    services, _ = limited
    now = datetime.now(UTC)
    async with services.engine.begin() as conn:
        for key, start in (
            ("login:old@example.com", now - timedelta(hours=2)),
            ("login-addr:203.0.113.1", now - timedelta(minutes=61)),
            ("login:recent@example.com", now - timedelta(minutes=5)),
        ):
            await conn.execute(
                text("INSERT INTO rate_limit_hits (key, window_start, count) VALUES (:k, :s, 3)"),
                {"k": key, "s": start},
            )
    await run_once(services)
    async with services.engine.connect() as conn:
        left = (await conn.execute(text("SELECT key FROM rate_limit_hits"))).scalars().all()
    assert left == ["login:recent@example.com"]


def test_trusted_proxies_default_to_localhost_and_take_addresses_and_networks(
    data_dir: Path,
) -> None:
    assert make_settings(data_dir).trusted_proxy_list == ["127.0.0.1"]
    given = make_settings(data_dir, trusted_proxies=" 10.0.0.7, 10.1.0.0/16 ,")
    assert given.trusted_proxy_list == ["10.0.0.7", "10.1.0.0/16"]
    # The app applies X-Forwarded-For itself (after the request-id check), not uvicorn.
    config = server_config(Starlette(), given, host="127.0.0.1", port=0)
    assert not config.proxy_headers
