"""Newest-first pages over (created_at, id): stable when rows are added while a client pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
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


async def newest_first(
    session: AsyncSession,
    stmt: Select[RowT],
    model: Any,
    *,
    first: int,
    after: Position | None,
) -> Page[RowT]:
    """One page of `stmt`'s rows after `after`, newest first; one extra row tells if more exist."""
    if after is not None:
        stmt = stmt.where(
            (model.created_at < after.created_at)
            | ((model.created_at == after.created_at) & (model.id < after.id))
        )
    ordered = stmt.order_by(model.created_at.desc(), model.id.desc()).limit(first + 1)
    rows = list((await session.scalars(ordered)).all())
    return Page(rows=rows[:first], has_next=len(rows) > first)
