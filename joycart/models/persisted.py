"""Persisted GraphQL documents: what a client may later send by its SHA-256 alone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from joycart.models.base import Base, created_at_column


class PersistedQuery(Base):
    """A document keyed by the lowercase hex SHA-256 of its exact text.

    `trusted` documents were registered ahead of time by an operator (`joycart persisted-queries
    add`, or the start-up directory); they are the only ones that run in trusted mode, and they
    do not count against the cap on documents clients register themselves.
    """

    __tablename__ = "persisted_queries"
    __table_args__ = (CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(300))  # "client 203.0.113.7" or "file ops.graphql"
    created_at: Mapped[datetime] = created_at_column()
