"""ops: partial indexes for the database-backed metrics

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 03:30:00.000000

/metrics counts open jobs, unsettled refunds and unapplied webhooks at every scrape; these
partial indexes hold only those rows, so the scrape stays cheap however many rows are settled.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_open", "jobs", ["status", "kind"], postgresql_where=text("status <> 'DONE'")
    )
    op.create_index(
        "ix_refunds_unsettled",
        "refunds",
        ["status", "created_at"],
        postgresql_where=text("status <> 'REFUNDED'"),
    )
    op.create_index(
        "ix_webhook_events_unapplied",
        "webhook_events",
        ["received_at"],
        postgresql_where=text("processed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_unapplied", table_name="webhook_events")
    op.drop_index("ix_refunds_unsettled", table_name="refunds")
    op.drop_index("ix_jobs_open", table_name="jobs")
