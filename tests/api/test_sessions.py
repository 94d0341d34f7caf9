"""Ending sessions: logout, logoutEverywhere and changePassword; revoked tokens stop at once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from joycart import security
from joycart.bootstrap import Services
from tests.conftest import JWT_SECRET
from tests.helpers import Api

PASSWORD = "correct horse battery"
ME = "{ me { id email } }"
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
    accessToken refreshToken errors { code field } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
    accessToken refreshToken errors { code } } }"""
LOGOUT = """mutation($t: String!) { logout(refreshToken: $t) { endedSessions errors { code } } }"""
EVERYWHERE = "mutation { logoutEverywhere { endedSessions errors { code } } }"
CHANGE = """mutation($c: String!, $n: String!) {
    changePassword(currentPassword: $c, newPassword: $n) {
        accessToken refreshToken user { id email } errors { code field } } }"""


async def _payload(api: Api, query: str, variables: Any = None, token: str | None = None) -> Any:
    (payload,) = (await api.gql(query, variables, token)).values()
    return payload


async def _login(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    found: dict[str, Any] = await _payload(
        api, LOGIN, {"input": {"email": email, "password": password}}
    )
    return found


async def _works(api: Api, access: str) -> bool:
    body = (await api.raw(ME, token=access)).json()
    if body.get("errors"):
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], body
        return False
    return body["data"]["me"] is not None


async def _refreshes(api: Api, refresh: str) -> bool:
    payload = await _payload(api, REFRESH, {"t": refresh})
    if payload["errors"]:
        assert [e["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
        return False
    return True


async def test_logout_ends_that_session_alone_at_once(api: Api) -> None:
    account = await api.register()
    phone = await _login(api, account.email)
    laptop = await _login(api, account.email)
    assert await _works(api, phone["accessToken"])

    ended = await _payload(api, LOGOUT, {"t": phone["refreshToken"]})

    assert ended == {"endedSessions": 1, "errors": []}
    assert not await _works(api, phone["accessToken"])  # the very next request
    assert not await _refreshes(api, phone["refreshToken"])
    assert await _works(api, laptop["accessToken"])
    assert await _refreshes(api, laptop["refreshToken"])
    again = await _payload(api, LOGOUT, {"t": phone["refreshToken"]})
    assert again == {"endedSessions": 0, "errors": []}
    unknown = await _payload(api, LOGOUT, {"t": "not-a-token"})
    assert [e["code"] for e in unknown["errors"]] == ["UNAUTHENTICATED"]


async def test_logout_of_a_rotated_session_ends_its_newer_tokens_too(api: Api) -> None:
    account = await api.register()
    first = await _login(api, account.email)
    rotated = await _payload(api, REFRESH, {"t": first["refreshToken"]})
    assert rotated["errors"] == []
    # Signing out with the token the SPA holds now ends the whole sign-in.
    assert (await _payload(api, LOGOUT, {"t": rotated["refreshToken"]}))["endedSessions"] == 1
    assert not await _works(api, first["accessToken"])
    assert not await _works(api, rotated["accessToken"])
    assert not await _refreshes(api, rotated["refreshToken"])


async def test_logout_everywhere_ends_every_token_issued_before_it_at_once(
    api: Api, services: Services
) -> None:
    account = await api.register()
    sessions = [await _login(api, account.email) for _ in range(3)]
    rotated = await _payload(api, REFRESH, {"t": sessions[0]["refreshToken"]})
    # A token made without a session (as tests and old releases did) ends too.
    bare = security.issue_access_token(JWT_SECRET, uuid.UUID(account.id))
    older = [account.token, bare, rotated["accessToken"], *(s["accessToken"] for s in sessions)]
    assert all([await _works(api, t) for t in older])

    ended = await _payload(api, EVERYWHERE, token=sessions[1]["accessToken"])

    assert ended == {"endedSessions": 4, "errors": []}  # registration and three logins
    assert not any([await _works(api, t) for t in older])
    refreshes = [rotated["refreshToken"], account.refresh_token]
    refreshes += [s["refreshToken"] for s in sessions[1:]]
    assert not any([await _refreshes(api, t) for t in refreshes])
    # Signing in again works, and only the new session is live.
    fresh = await _login(api, account.email)
    assert await _works(api, fresh["accessToken"])
    anonymous = await _payload(api, EVERYWHERE)
    assert [e["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]


async def test_change_password_ends_every_other_session_and_returns_a_new_one(
    api: Api,
) -> None:
    account = await api.register()
    other = await _login(api, account.email)
    variables = {"c": "wrong password", "n": "a brand new passphrase"}
    wrong = await _payload(api, CHANGE, variables, token=account.token)
    assert [(e["code"], e["field"]) for e in wrong["errors"]] == [
        ("INVALID_CREDENTIALS", "currentPassword")
    ]
    short = await _payload(api, CHANGE, {"c": PASSWORD, "n": "short"}, token=account.token)
    assert [(e["code"], e["field"]) for e in short["errors"]] == [("INVALID_INPUT", "newPassword")]
    assert await _works(api, other["accessToken"])  # refusals end nothing

    changed = await _payload(
        api, CHANGE, {"c": PASSWORD, "n": "a brand new passphrase"}, token=account.token
    )

    assert changed["errors"] == []
    assert changed["user"] == {"id": account.id, "email": account.email}
    assert await _works(api, changed["accessToken"])
    for old in (account.token, other["accessToken"]):
        assert not await _works(api, old)
    for old in (account.refresh_token, other["refreshToken"]):
        assert not await _refreshes(api, old)
    assert await _refreshes(api, changed["refreshToken"])
    assert (await _login(api, account.email))["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert (await _login(api, account.email, "a brand new passphrase"))["errors"] == []


async def test_a_refresh_racing_logout_everywhere_never_outlives_it(api: Api) -> None:
    account = await api.register()
    for _ in range(5):
        session = await _login(api, account.email)
        refreshed, ended = await asyncio.gather(
            _payload(api, REFRESH, {"t": session["refreshToken"]}),
            _payload(api, EVERYWHERE, token=session["accessToken"]),
        )
        assert ended["errors"] == []
        # Whichever went first, nothing issued before or during the sign-out survives it.
        for token in (refreshed["accessToken"], session["accessToken"]):
            if token:
                assert not await _works(api, token)
        for token in (refreshed["refreshToken"], session["refreshToken"]):
            if token:
                assert not await _refreshes(api, token)
