"""Newest-first pages over (created_at, id): stable when rows are added while a client pages."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Position:
    """Where the previous page ended."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    has_next: bool


def _newest_first(stmt: Any, keys: Any, first: int, after: Position | None) -> Any:
    """`stmt` after `after`, newest first, one row more than a page. `keys` has `created_at` and
    `id`: a mapped class or a table's columns (`Table.c`)."""
    if after is not None:
        stmt = stmt.where(
            (keys.created_at < after.created_at)
            | ((keys.created_at == after.created_at) & (keys.id < after.id))
        )
    return stmt.order_by(keys.created_at.desc(), keys.id.desc()).limit(first + 1)


async def newest_first(
    session: AsyncSession,
    stmt: Select[RowT],
    model: Any,
    *,
    first: int,
    after: Position | None,
) -> Page[RowT]:
    """One page of `stmt`'s ORM objects after `after`, newest first; one extra row tells if more
    exist."""
    rows = list((await session.scalars(_newest_first(stmt, model, first, after))).all())
    return Page(rows=rows[:first], has_next=len(rows) > first)


async def newest_first_rows(
    session: AsyncSession,
    stmt: Select[Any],
    columns: Any,
    make: Callable[[Row[Any]], RowT],
    *,
    first: int,
    after: Position | None,
) -> Page[RowT]:
    """The same page of a Core `stmt` over table columns, run on the session's connection
    without the ORM (no identity map, no instances); each row becomes `make(row)`."""
    conn = await session.connection()
    result = await conn.execute(_newest_first(stmt, columns, first, after))
    rows = [make(row) for row in result]
    return Page(rows=rows[:first], has_next=len(rows) > first)
