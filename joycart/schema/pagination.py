"""Relay connections with keyset cursors over (created_at, id): stable under inserts."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import strawberry

from joycart.errors import InvalidInput
from joycart.resolvers.pages import Position

MAX_PAGE = 100
NodeT = TypeVar("NodeT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, raw_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        return Position(datetime.fromisoformat(created), uuid.UUID(raw_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("`after` is not a cursor this API issued.", field="after") from None


DEFAULT_PAGE = 20


class Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> uuid.UUID: ...


def connection(rows: Sequence[Keyed], nodes: Sequence[NodeT], has_next: bool) -> Connection[NodeT]:
    """A Relay connection of `nodes`, each with the cursor of the row it was built from."""
    edges = [
        Edge(cursor=encode_cursor(row.created_at, row.id), node=node)
        for row, node in zip(rows, nodes, strict=True)
    ]
    end = edges[-1].cursor if edges else None
    return Connection(edges=edges, page_info=PageInfo(has_next_page=has_next, end_cursor=end))


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(f"`first` must be between 1 and {MAX_PAGE}.", field="first")
    return first
