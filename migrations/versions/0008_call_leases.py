"""call leases: pooler-safe serialisation of gateway calls (replaces session advisory locks)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_leases",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("token", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_call_leases")),
    )


def downgrade() -> None:
    op.drop_table("call_leases")
