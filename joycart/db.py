"""Engine and session factory; the caller of an operation owns its transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

Sessions = async_sessionmaker[AsyncSession]


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        # A statement that waits on a lock longer than this is a bug or an overload: fail it.
        connect_args={"server_settings": {"lock_timeout": "15000", "application_name": "joycart"}},
    )


def make_sessions(bind: AsyncEngine | AsyncConnection) -> Sessions:
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on any exception."""
    async with sessions() as session, session.begin():
        yield session
