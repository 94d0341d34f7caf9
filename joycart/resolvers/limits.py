"""Rate limits: fixed windows counted in PostgreSQL, so a limit holds across every API process.

Each `Limit` names what it counts and how it answers once exceeded. A request counts against
several limits at once (a login: its email and its client address); all of them are counted,
and the first one over its maximum refuses the request with `RATE_LIMITED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.errors import RateLimited
from joycart.models import RateLimitHit

MAX_KEY = 200
# Windows that ended this long ago are deleted by the worker (longer than every window below).
KEEP_WINDOWS_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class Limit:
    """At most `maximum` attempts per `window` for one subject (an email, an address, a user)."""

    name: str
    maximum: int
    window: timedelta
    what: str  # "sign-in attempts for this email": used in the refusal message


FIVE_MINUTES = timedelta(minutes=5)
LOGIN_PER_EMAIL = Limit("login", 10, FIVE_MINUTES, "sign-in attempts for this email")
# Credential stuffing tries many emails from one place; a shared office NAT stays well below it.
LOGIN_PER_ADDRESS = Limit("login-addr", 50, FIVE_MINUTES, "sign-in attempts from your address")
REGISTER_PER_EMAIL = Limit("register", 5, FIVE_MINUTES, "registrations with this email")
REGISTER_PER_ADDRESS = Limit("register-addr", 20, FIVE_MINUTES, "registrations from your address")
PASSWORD_CHANGE_PER_USER = Limit("password", 10, FIVE_MINUTES, "password changes for this account")
CONFIRM_PAYMENT_PER_USER = Limit(
    "confirm", 30, FIVE_MINUTES, "payment confirmations from this account"
)


def _window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)


async def hit_rate_limit(
    session: AsyncSession,
    *,
    key: str,
    limit: int,
    window: timedelta = FIVE_MINUTES,
    what: str = "attempts",
    now: datetime | None = None,
) -> None:
    """Count one attempt in a window shared by every process; refuse once over the limit."""
    now = now or datetime.now(UTC)
    start = _window_start(now, window)
    count = await session.scalar(
        insert(RateLimitHit)
        .values(key=key[:MAX_KEY], window_start=start, count=1)
        .on_conflict_do_update(
            index_elements=[RateLimitHit.key, RateLimitHit.window_start],
            set_={"count": RateLimitHit.count + 1},
        )
        .returning(RateLimitHit.count)
    )
    if count is not None and count > limit:
        retry = int((start + window - now).total_seconds()) + 1
        minutes = int(window.total_seconds()) // 60
        raise RateLimited(
            f"Too many {what} (at most {limit} every {minutes} minutes); "
            f"try again in {retry} seconds."
        )


async def hit(
    session: AsyncSession, hits: Sequence[tuple[Limit, str]], *, now: datetime | None = None
) -> None:
    """Count one attempt against each (limit, subject); refuse if any is over its maximum."""
    refused: RateLimited | None = None
    for limit, subject in hits:
        try:
            await hit_rate_limit(
                session,
                key=f"{limit.name}:{subject}",
                limit=limit.maximum,
                window=limit.window,
                what=limit.what,
                now=now,
            )
        except RateLimited as exc:
            refused = refused or exc
    if refused is not None:
        raise refused


async def prune_windows(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete counters of windows that ended long ago; returns how many rows went."""
    cutoff = (now or datetime.now(UTC)) - KEEP_WINDOWS_FOR
    result = await session.execute(delete(RateLimitHit).where(RateLimitHit.window_start < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
