"""Operational tables: the durable job queue and the webhook inbox."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from joycart.models.base import Base, created_at_column, enum_column, updated_at_column
from joycart.models.payments import Payment, Refund


class JobStatus(enum.Enum):
    PENDING = "PENDING"
    DONE = "DONE"
    DEAD = "DEAD"


class Job(Base):
    """Work owed to the outside world, claimed by workers with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "run_at", postgresql_where=text("status = 'PENDING'")),
        # Only the jobs not done: what /metrics counts at every scrape, however many are DONE.
        Index("ix_jobs_open", "status", "kind", postgresql_where=text("status <> 'DONE'")),
        Index(
            "uq_jobs_pending_dedupe",
            "dedupe_key",
            unique=True,
            postgresql_where=text("status = 'PENDING'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "job_status"), default=JobStatus.PENDING
    )
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class WebhookEvent(Base):
    """A verified webhook delivery, deduplicated on the SHA-256 of the signed raw body."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # Only the events not applied yet: what /metrics reads at every scrape.
        Index(
            "ix_webhook_events_unapplied",
            "received_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    body_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    event_type: Mapped[str] = mapped_column(String(80))
    event_id_header: Mapped[str | None] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    outcome: Mapped[str | None] = mapped_column(String(500))
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = created_at_column()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = updated_at_column()


# The pages reconciliation reads (resolvers/reconcile.py); declared here, beside the job queue
# that runs it, so the payment and refund models stay as their owners wrote them.
Index(
    "ix_payments_reconcile",
    Payment.created_at,
    Payment.id,
    postgresql_where=text("status <> 'CAPTURED'"),
)
Index(
    "ix_refunds_initiated",
    Refund.created_at,
    Refund.id,
    postgresql_where=text("status = 'INITIATED'"),
)
