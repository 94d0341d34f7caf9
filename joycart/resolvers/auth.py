"""Accounts: registration, login, refresh-token rotation with reuse detection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import security, validation
from joycart.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidInput,
    RateLimited,
    Unauthenticated,
)
from joycart.models import RateLimitHit, RefreshToken, Role, User

MIN_PASSWORD = 8
MAX_PASSWORD = 128  # checked before hashing: a 1 MB password never reaches argon2
LOGIN_ATTEMPTS_PER_WINDOW = 10
LOGIN_WINDOW = timedelta(minutes=5)


class FamilyRevoked(Exception):
    """A used refresh token came back: the revocation must be committed, then refused."""

    def __init__(self, error: Unauthenticated) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class AuthResult:
    user: User
    access_token: str
    refresh_token: str


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters.", field="password"
        )


async def _issue(
    session: AsyncSession, *, user: User, jwt_secret: str, family_id: uuid.UUID | None = None
) -> AuthResult:
    token, token_hash = security.new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + security.REFRESH_TOKEN_TTL,
        )
    )
    await session.flush()
    return AuthResult(user, security.issue_access_token(jwt_secret, user.id), token)


async def register(
    session: AsyncSession, *, email: str, password: str, name: str, role: Role, jwt_secret: str
) -> AuthResult:
    """Create an account; emails are unique whatever their letter case."""
    email = validation.email(email)
    name = validation.text(name, field="name", min_len=1, max_len=100, label="Name")
    _check_password(password)
    taken = await session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
    if taken is not None:
        raise EmailTaken("An account with this email already exists.", field="email")
    password_hash = await security.hash_password(password)
    inserted = await session.scalar(
        insert(User)
        .values(id=uuid.uuid4(), email=email, name=name, role=role, password_hash=password_hash)
        .on_conflict_do_nothing()
        .returning(User.id)
    )
    if inserted is None:  # lost a race with the same email
        raise EmailTaken("An account with this email already exists.", field="email")
    user = await session.get_one(User, inserted)
    return await _issue(session, user=user, jwt_secret=jwt_secret)


async def login(session: AsyncSession, *, email: str, password: str, jwt_secret: str) -> AuthResult:
    """Same answer, in about the same time, for a wrong password and an unknown email."""
    if len(password) > MAX_PASSWORD or not email.isprintable():
        raise InvalidCredentials("Email or password is incorrect.")
    user = await session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    ok = await security.verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        raise InvalidCredentials("Email or password is incorrect.")
    if security.password_needs_rehash(user.password_hash):
        user.password_hash = await security.hash_password(password)
    return await _issue(session, user=user, jwt_secret=jwt_secret)


async def refresh(session: AsyncSession, *, refresh_token: str, jwt_secret: str) -> AuthResult:
    """Rotate a refresh token; presenting a used one revokes its whole family.

    On reuse this raises `FamilyRevoked` after writing the revocation: the caller commits, then
    answers `UNAUTHENTICATED`.
    """
    now = datetime.now(UTC)
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == security.hash_refresh_token(refresh_token))
        .with_for_update()
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthenticated("The refresh token is invalid or expired; sign in again.")
    if row.used_at is not None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        raise FamilyRevoked(
            Unauthenticated("This refresh token was already used; every session of it is revoked.")
        )
    row.used_at = now
    user = await session.get_one(User, row.user_id)
    return await _issue(session, user=user, jwt_secret=jwt_secret, family_id=row.family_id)


async def user_for_token(session: AsyncSession, *, token: str, jwt_secret: str) -> User:
    claims = security.decode_access_token(jwt_secret, token)
    user = await session.get(User, claims.user_id)
    if user is None:
        raise Unauthenticated("The account for this token no longer exists.")
    return user


async def hit_rate_limit(
    session: AsyncSession, *, key: str, limit: int, window: timedelta = LOGIN_WINDOW
) -> None:
    """Count one attempt in a window shared by every process; refuse once over the limit."""
    now = datetime.now(UTC)
    seconds = int(window.total_seconds())
    start = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)
    count = await session.scalar(
        insert(RateLimitHit)
        .values(key=key, window_start=start, count=1)
        .on_conflict_do_update(
            index_elements=[RateLimitHit.key, RateLimitHit.window_start],
            set_={"count": RateLimitHit.count + 1},
        )
        .returning(RateLimitHit.count)
    )
    if count is not None and count > limit:
        retry = int((start + window - now).total_seconds()) + 1
        raise RateLimited(f"Too many attempts; try again in {retry} seconds.")
