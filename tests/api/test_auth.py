"""Accounts over HTTP: register, login, me, refresh-token rotation, and attacks on access tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from sqlalchemy import text

from joycart import security
from joycart.bootstrap import Services
from joycart.errors import RateLimited
from joycart.resolvers.auth import hit_rate_limit
from tests.conftest import JWT_SECRET
from tests.helpers import Api

PASSWORD = "correct horse battery"
REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
    accessToken refreshToken user { id email role } errors { code message field } } }"""
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
    accessToken refreshToken user { id } errors { code message field } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
    accessToken refreshToken user { id } errors { code message field } } }"""
ME = "{ me { id email name role } }"


async def _payload(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    data = await api.gql(query, variables)
    (payload,) = data.values()
    assert isinstance(payload, dict)
    return payload


async def _register(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    new = {"email": email, "password": password, "name": "Asha", "role": "SELLER"}
    return await _payload(api, REGISTER, {"input": new})


async def _login(api: Api, email: str, password: str) -> dict[str, Any]:
    return await _payload(api, LOGIN, {"input": {"email": email, "password": password}})


async def _refresh(api: Api, token: str) -> dict[str, Any]:
    return await _payload(api, REFRESH, {"t": token})


async def _user_rows(services: Services, email: str) -> int:
    async with services.engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM users WHERE lower(email) = lower(:e)"), {"e": email}
        )
    return int(count or 0)


async def test_register_login_me_round_trip(api: Api) -> None:
    registered = await _register(api, "asha@example.com")
    assert registered["errors"] == []
    assert registered["user"]["role"] == "SELLER"
    me = await api.gql(ME, token=registered["accessToken"])
    assert me["me"] == {
        "id": registered["user"]["id"],
        "email": "asha@example.com",
        "name": "Asha",
        "role": "SELLER",
    }
    logged_in = await _login(api, "ASHA@example.com", PASSWORD)
    assert logged_in["errors"] == []
    assert logged_in["user"]["id"] == registered["user"]["id"]
    again = await api.gql(ME, token=logged_in["accessToken"])
    assert again["me"]["id"] == registered["user"]["id"]


async def test_me_is_null_when_anonymous(api: Api) -> None:
    assert await api.gql(ME) == {"me": None}


async def test_wrong_password_and_unknown_email_get_the_same_answer(api: Api) -> None:
    await _register(api, "bina@example.com")
    wrong = await _login(api, "bina@example.com", "not the password")
    unknown = await _login(api, "nobody@example.com", PASSWORD)
    assert wrong["accessToken"] is None
    assert unknown["accessToken"] is None
    assert wrong["errors"] == unknown["errors"]
    assert [e["code"] for e in wrong["errors"]] == ["INVALID_CREDENTIALS"]


async def test_duplicate_email_in_any_case_is_taken_and_writes_nothing(
    api: Api, services: Services
) -> None:
    assert (await _register(api, "Chitra@Example.com"))["errors"] == []
    duplicate = await _register(api, "chitra@EXAMPLE.COM", password="another password")
    assert [(e["code"], e["field"]) for e in duplicate["errors"]] == [("EMAIL_TAKEN", "email")]
    assert duplicate["accessToken"] is None
    assert await _user_rows(services, "chitra@example.com") == 1


async def test_racing_registrations_of_one_email_make_one_account(
    api: Api, services: Services
) -> None:
    emails = ["race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.com"]
    payloads = await asyncio.gather(*(_register(api, e) for e in emails))
    codes = sorted(e["code"] for p in payloads for e in p["errors"])
    assert codes == ["EMAIL_TAKEN"] * 3
    assert await _user_rows(services, "race@example.com") == 1


async def test_malformed_email_is_invalid_input_on_email(api: Api, services: Services) -> None:
    for bad in ("not-an-email", "a@b", "two@@example.com", " @example.com", ""):
        payload = await _register(api, bad)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [
            ("INVALID_INPUT", "email")
        ], bad
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM users")) == 0


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls to `security.hash_password` (the lengths it was asked to hash)."""
    calls: list[int] = []
    original = security.hash_password

    async def counting(password: str) -> str:
        calls.append(len(password))
        return await original(password)

    monkeypatch.setattr(security, "hash_password", counting)
    return calls


async def test_empty_and_one_megabyte_passwords_are_refused_before_hashing(
    api: Api, services: Services, hash_calls: list[int]
) -> None:
    empty = await _register(api, "esha@example.com", password="")
    assert [(e["code"], e["field"]) for e in empty["errors"]] == [("INVALID_INPUT", "password")]
    started = time.monotonic()
    payload = await _register(api, "esha@example.com", password="p" * 1_000_000)
    elapsed = time.monotonic() - started
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", "password")]
    assert elapsed < 1.0
    assert hash_calls == []
    assert await _user_rows(services, "esha@example.com") == 0
    # The counter does see a hash: the check above can fail.
    assert (await _register(api, "esha@example.com"))["errors"] == []
    assert hash_calls == [len(PASSWORD)]


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(
    api: Api, services: Services
) -> None:
    first = await _register(api, "farah@example.com")
    second = await _refresh(api, first["refreshToken"])
    assert second["errors"] == []
    assert second["refreshToken"] != first["refreshToken"]
    assert (await api.gql(ME, token=second["accessToken"]))["me"]["id"] == first["user"]["id"]

    reused = await _refresh(api, first["refreshToken"])
    assert [e["code"] for e in reused["errors"]] == ["UNAUTHENTICATED"]
    assert reused["refreshToken"] is None
    # The thief may hold the new token; it is refused too.
    stolen = await _refresh(api, second["refreshToken"])
    assert [e["code"] for e in stolen["errors"]] == ["UNAUTHENTICATED"]
    async with services.engine.connect() as conn:
        live = await conn.scalar(
            text("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL")
        )
    assert live == 0


async def test_unknown_refresh_token_is_unauthenticated(api: Api) -> None:
    payload = await _refresh(api, "not-a-token")
    assert [e["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hand_signed(alg: str, claims: dict[str, Any], digest: Any = hashlib.sha256) -> str:
    """A JWT signed with HMAC and the real secret, whatever algorithm its header names."""
    header = {"alg": alg, "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(JWT_SECRET.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + 600,
        "iss": security.ISSUER,
        "aud": security.AUDIENCE,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _tampered(token: str, user_id: str) -> str:
    header, _, signature = token.split(".")
    other = _claims(user_id, sub="00000000-0000-0000-0000-000000000001")
    return f"{header}.{_b64(json.dumps(other).encode())}.{signature}"


NOW = int(time.time())
ATTACKS: dict[str, Callable[[str, str], str]] = {
    "alg none": lambda uid, _: jwt.encode(_claims(uid), None, algorithm="none"),
    "HS512": lambda uid, _: _hand_signed("HS512", _claims(uid), hashlib.sha512),
    "RS256 header, HMAC with the secret": lambda uid, _: _hand_signed("RS256", _claims(uid)),
    "tampered payload": lambda uid, good: _tampered(good, uid),
    "no exp": lambda uid, _: _hand_signed("HS256", _claims(uid, exp=None)),
    "expired": lambda uid, _: _hand_signed("HS256", _claims(uid, iat=NOW - 1200, exp=NOW - 300)),
    "wrong aud": lambda uid, _: _hand_signed("HS256", _claims(uid, aud="other")),
    "wrong iss": lambda uid, _: _hand_signed("HS256", _claims(uid, iss="other")),
    "exp past 15 minutes": lambda uid, _: _hand_signed(
        "HS256", _claims(uid, exp=int(time.time()) + 16 * 60)
    ),
}


async def test_forged_access_tokens_are_unauthenticated(api: Api) -> None:
    account = await api.register()
    # The crafting itself is sound: an honest token made the same way is accepted.
    honest = _hand_signed("HS256", _claims(account.id))
    assert (await api.gql(ME, token=honest))["me"]["id"] == account.id
    for name, forge in ATTACKS.items():
        response = await api.raw(ME, token=forge(account.id, account.token))
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert (body.get("data") or {}).get("me") is None, name
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
        assert codes == ["UNAUTHENTICATED"], (name, body)


async def test_eleventh_attempt_in_a_window_is_rate_limited(services: Services) -> None:
    async def attempt() -> None:
        async with services.sessions() as session, session.begin():
            await hit_rate_limit(session, key="login:rate@example.com", limit=10)

    for _ in range(10):
        await attempt()
    with pytest.raises(RateLimited):
        await attempt()
