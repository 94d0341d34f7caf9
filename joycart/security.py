"""Password hashing (argon2id, off the event loop) and access tokens (HS256 JWTs)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from joycart.errors import Unauthenticated

ACCESS_TOKEN_TTL = timedelta(minutes=15)
REFRESH_TOKEN_TTL = timedelta(days=30)
ISSUER = "joycart"
AUDIENCE = "joycart-api"
ALGORITHM = "HS256"

# OWASP's argon2id minimum (19 MiB, t=2): ~17 ms per hash here, so logins stay fast under load.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Bound memory and CPU: at most this many hashes run at once per event loop.
_HASH_CONCURRENCY = 4
_hash_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _hash_slots:
        _hash_slots[loop] = asyncio.Semaphore(_HASH_CONCURRENCY)
    return _hash_slots[loop]


# Verified against when the account does not exist, so a failed login costs the same either way.
_DUMMY_HASH = _hasher.hash("joycart-no-such-account")


async def hash_password(password: str) -> str:
    async with _slots():
        return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends one verification, even with no hash."""

    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    async with _slots():
        return await asyncio.to_thread(_verify)


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime
    # The account's token version when the token was issued: signing out everywhere or changing
    # the password raises the version, and every older token stops at once.
    token_version: int = 0
    # The refresh-token family (one sign-in) the token belongs to: revoking the family ends it.
    family_id: uuid.UUID | None = None


def issue_access_token(
    secret: str,
    user_id: uuid.UUID,
    now: datetime | None = None,
    *,
    token_version: int = 0,
    family_id: uuid.UUID | None = None,
) -> str:
    now = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + ACCESS_TOKEN_TTL).timestamp()),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": secrets.token_hex(8),
        "ver": token_version,
    }
    if family_id is not None:
        claims["fam"] = str(family_id)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Verify signature, algorithm, issuer, audience and lifetime, or raise `Unauthenticated`."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        if expires_at - issued_at > ACCESS_TOKEN_TTL:
            raise Unauthenticated("The access token lives longer than allowed.")
        version = claims.get("ver", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise Unauthenticated("The access token is invalid; sign in again.")
        family = claims.get("fam")
        return AccessClaims(
            user_id=uuid.UUID(str(claims["sub"])),
            issued_at=issued_at,
            expires_at=expires_at,
            token_version=version,
            family_id=uuid.UUID(str(family)) if family is not None else None,
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise Unauthenticated("The access token is invalid or expired; sign in again.") from exc


def new_refresh_token() -> tuple[str, bytes]:
    """An opaque token for the client and the hash we keep (a database leak yields no tokens)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
