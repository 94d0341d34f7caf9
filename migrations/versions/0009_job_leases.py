"""job leases: lease tokens, attempt times, and the indexes reconciliation pages on

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:00:00.000000

A claim writes a lease token that every later write must present; the first and last attempt
times let a job be declared DEAD only after a day of trying. Reconciliation pages through the
payment sessions that can still be paid by (created_at, id), and through INITIATED refunds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_token", sa.Uuid(), nullable=True))
    op.add_column("jobs", sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_payments_reconcile",
        "payments",
        ["created_at", "id"],
        postgresql_where=text("status <> 'CAPTURED'"),
    )
    op.create_index(
        "ix_refunds_initiated",
        "refunds",
        ["created_at", "id"],
        postgresql_where=text("status = 'INITIATED'"),
    )


def downgrade() -> None:
    op.drop_index("ix_refunds_initiated", table_name="refunds")
    op.drop_index("ix_payments_reconcile", table_name="payments")
    op.drop_column("jobs", "last_attempt_at")
    op.drop_column("jobs", "first_attempt_at")
    op.drop_column("jobs", "lease_token")
