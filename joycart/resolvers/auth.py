"""Accounts: registration, login, refresh-token rotation with reuse detection, and signing out.

A sign-in starts a refresh-token *family*; every access token names its family (`fam`) and the
account's token version (`ver`). Signing out one family (`logout`), every family
(`logout_everywhere`) or changing the password ends the matching access tokens at once:
`user_for_token` checks both in the statement that loads the caller.

Every writer of an account's tokens locks the account row first (`_lock_user`), so a refresh
racing a sign-out either finishes before it (and its new token is revoked with the rest) or
sees the revocation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, false, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import security, validation
from joycart.errors import EmailTaken, InvalidCredentials, InvalidInput, Unauthenticated
from joycart.models import RefreshToken, Role, User
from joycart.models.base import detached
from joycart.resolvers.limits import hit_rate_limit

__all__ = ["hit_rate_limit"]  # re-exported: the rate limiter lives in resolvers.limits

MIN_PASSWORD = 8
MAX_PASSWORD = 128  # checked before hashing: a 1 MB password never reaches argon2
SIGNED_OUT = "This session was signed out; sign in again."


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


def _check_password(password: str, field: str = "password") -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters.", field=field
        )


async def _lock_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The account row, locked: token writers of one account queue here, in one order."""
    user = await session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise Unauthenticated("The account no longer exists.")
    return user


async def _issue(
    session: AsyncSession, *, user: User, jwt_secret: str, family_id: uuid.UUID | None = None
) -> AuthResult:
    token, token_hash = security.new_refresh_token()
    family = family_id or uuid.uuid4()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family,
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + security.REFRESH_TOKEN_TTL,
        )
    )
    await session.flush()
    access = security.issue_access_token(
        jwt_secret, user.id, token_version=user.token_version, family_id=family
    )
    return AuthResult(user, access, token)


async def _revoke(
    session: AsyncSession, *, user_id: uuid.UUID, family_id: uuid.UUID | None = None
) -> int:
    """Revoke the account's tokens (one family, or all); returns how many live sessions ended."""
    now = datetime.now(UTC)
    stmt = update(RefreshToken).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
    )
    if family_id is not None:
        stmt = stmt.where(RefreshToken.family_id == family_id)
    rows = await session.execute(
        stmt.values(revoked_at=now).returning(
            RefreshToken.family_id, RefreshToken.used_at, RefreshToken.expires_at
        )
    )
    # A family is a live session while its newest token is unused and unexpired.
    return len({r.family_id for r in rows if r.used_at is None and r.expires_at > now})


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
    found = await session.scalar(
        select(User).where(func.lower(User.email) == email.strip().lower())
    )
    ok = await security.verify_password(found.password_hash if found else None, password)
    if found is None or not ok:
        raise InvalidCredentials("Email or password is incorrect.")
    rehash = security.password_needs_rehash(found.password_hash)
    new_hash = await security.hash_password(password) if rehash else None
    user = await _lock_user(session, found.id)  # after argon2: the lock is held for ms only
    if new_hash is not None:
        user.password_hash = new_hash
    return await _issue(session, user=user, jwt_secret=jwt_secret)


async def refresh(session: AsyncSession, *, refresh_token: str, jwt_secret: str) -> AuthResult:
    """Rotate a refresh token; presenting a used one revokes its whole family.

    On reuse this raises `FamilyRevoked` after writing the revocation: the caller commits, then
    answers `UNAUTHENTICATED`.
    """
    now = datetime.now(UTC)
    token_hash = security.hash_refresh_token(refresh_token)
    owner = await session.scalar(
        select(RefreshToken.user_id).where(RefreshToken.token_hash == token_hash)
    )
    if owner is None:
        raise Unauthenticated("The refresh token is invalid or expired; sign in again.")
    user = await _lock_user(session, owner)
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
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
    return await _issue(session, user=user, jwt_secret=jwt_secret, family_id=row.family_id)


async def logout(session: AsyncSession, *, refresh_token: str) -> int:
    """End the sign-in this refresh token belongs to: its family and its access tokens."""
    row = await session.scalar(
        select(RefreshToken).where(
            RefreshToken.token_hash == security.hash_refresh_token(refresh_token)
        )
    )
    if row is None:
        raise Unauthenticated("The refresh token is invalid; there is no session to sign out.")
    await _lock_user(session, row.user_id)
    return await _revoke(session, user_id=row.user_id, family_id=row.family_id)


async def logout_everywhere(session: AsyncSession, *, user: User) -> int:
    """End every sign-in of the account: all refresh families, and every access token at once."""
    locked = await _lock_user(session, user.id)
    locked.token_version += 1
    return await _revoke(session, user_id=user.id)


async def change_password(
    session: AsyncSession,
    *,
    user: User,
    current_password: str,
    new_password: str,
    jwt_secret: str,
) -> AuthResult:
    """Needs the current password; ends every other sign-in and returns a new one."""
    _check_password(new_password, field="newPassword")
    if len(current_password) > MAX_PASSWORD or not await security.verify_password(
        user.password_hash, current_password
    ):
        raise InvalidCredentials("The current password is incorrect.", field="currentPassword")
    new_hash = await security.hash_password(new_password)
    locked = await _lock_user(session, user.id)
    if locked.password_hash != user.password_hash:  # changed meanwhile: verify against the new
        raise InvalidCredentials("The current password is incorrect.", field="currentPassword")
    locked.password_hash = new_hash
    locked.token_version += 1
    await _revoke(session, user_id=user.id)
    return await _issue(session, user=locked, jwt_secret=jwt_secret)


# The caller's account and whether the token's family was revoked, in one statement built
# once (every authenticated request sends it): plain columns, made into a detached `User`.
_REVOKED = (
    select(RefreshToken.id)
    .where(
        RefreshToken.family_id == bindparam("family"),
        RefreshToken.user_id == bindparam("user"),
        RefreshToken.revoked_at.is_not(None),
    )
    .exists()
)
_ACCOUNT_OF_FAMILY = select(User.__table__, _REVOKED.label("revoked")).where(
    User.id == bindparam("user")
)
_ACCOUNT = select(User.__table__, false().label("revoked")).where(User.id == bindparam("user"))


async def user_for_token(session: AsyncSession, *, token: str, jwt_secret: str) -> User:
    """The account an access token acts for, if its sign-in is still live.

    One statement loads the account and whether the token's family was revoked: a signed-out
    token stops at its next request, at no extra round trip.
    """
    claims = security.decode_access_token(jwt_secret, token)
    conn = await session.connection()
    if claims.family_id is not None:
        params = {"user": claims.user_id, "family": claims.family_id}
        found = (await conn.execute(_ACCOUNT_OF_FAMILY, params)).one_or_none()
    else:
        found = (await conn.execute(_ACCOUNT, {"user": claims.user_id})).one_or_none()
    if found is None:
        raise Unauthenticated("The account for this token no longer exists.")
    values = dict(found._mapping)
    if values.pop("revoked") or values["token_version"] != claims.token_version:
        raise Unauthenticated(SIGNED_OUT)
    return detached(User, values)
