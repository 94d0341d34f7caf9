"""every new order event notifies `joycart_orders` (ids only), delivered when its transaction commits

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00

Every status change of an order, item, payment session or refund, and every history entry, is an
`order_events` row written in the writer's transaction (resolvers/states.py). A row trigger turns
each into a NOTIFY: PostgreSQL delivers it only when that transaction commits (a rolled-back one
sends nothing), to every process listening, whoever wrote it (API, webhook, worker, CLI). The
payload names ids only (well under NOTIFY's 8000-byte limit); listeners read the state itself.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_order_events_created_at", "order_events", ["created_at"], unique=False)
    op.execute(
        """CREATE FUNCTION joycart_notify_order_event() RETURNS trigger
           LANGUAGE plpgsql AS $$
           BEGIN
             PERFORM pg_notify('joycart_orders', json_build_object(
               'event_id', NEW.id,
               'order_id', NEW.order_id,
               'order_item_id', NEW.order_item_id,
               'subject', NEW.subject,
               'subject_id', NEW.subject_id)::text);
             RETURN NULL;
           END $$"""
    )
    op.execute(
        """CREATE TRIGGER order_events_notify AFTER INSERT ON order_events
           FOR EACH ROW EXECUTE FUNCTION joycart_notify_order_event()"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER order_events_notify ON order_events")
    op.execute("DROP FUNCTION joycart_notify_order_event()")
    op.drop_index("ix_order_events_created_at", table_name="order_events")
