"""order events name their subject (order, item, payment, refund) and the item they concern

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "order_events",
        sa.Column("subject", sa.String(length=16), server_default="ORDER", nullable=False),
    )
    op.add_column("order_events", sa.Column("subject_id", sa.Uuid(), nullable=True))
    op.add_column("order_events", sa.Column("order_item_id", sa.Uuid(), nullable=True))
    op.create_index(
        op.f("ix_order_events_order_item_id"), "order_events", ["order_item_id"], unique=False
    )
    op.create_foreign_key(
        op.f("fk_order_events_order_item_id_order_items"),
        "order_events",
        "order_items",
        ["order_item_id"],
        ["id"],
    )
    # Events written before this revision named their item in the detail.
    op.execute(
        """UPDATE order_events SET order_item_id = (detail->>'order_item_id')::uuid,
                  subject = 'ITEM', subject_id = (detail->>'order_item_id')::uuid
           WHERE detail ? 'order_item_id'"""
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_order_events_order_item_id_order_items"), "order_events", type_="foreignkey"
    )
    op.drop_index(op.f("ix_order_events_order_item_id"), table_name="order_events")
    op.drop_column("order_events", "order_item_id")
    op.drop_column("order_events", "subject_id")
    op.drop_column("order_events", "subject")
