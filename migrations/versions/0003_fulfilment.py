"""addresses, shipments and returns; unit counts on order items; new statuses and reasons

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:52:51.930424
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Enum columns are strings with a CHECK of their values (models/base.py, `enum_column`): a new
# value replaces the CHECK. Existing rows keep their values and meanings.
ORDER_STATUS_OLD = ("PENDING_PAYMENT", "PAID", "PARTIALLY_CANCELLED", "CANCELLED", "EXPIRED")
ITEM_STATUS_OLD = ("ACTIVE", "PARTIALLY_CANCELLED", "CANCELLED")
FULFILMENT_STATUSES = (
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "DELIVERED",
    "RETURN_REQUESTED",
    "PARTIALLY_RETURNED",
    "RETURNED",
)
STOCK_REASON_OLD = ("INITIAL", "ADJUSTMENT", "CHECKOUT", "CANCELLATION", "EXPIRY")
REFUND_REASON_OLD = ("CANCELLATION", "UNOWED_CAPTURE")
ENUM_CHECKS = (  # table, constraint, column, values before, values added
    ("orders", "ck_orders_order_status", "status", ORDER_STATUS_OLD, FULFILMENT_STATUSES),
    (
        "order_items",
        "ck_order_items_order_item_status",
        "status",
        ITEM_STATUS_OLD,
        FULFILMENT_STATUSES,
    ),
    ("stock_ledger", "ck_stock_ledger_stock_reason", "reason", STOCK_REASON_OLD, ("RETURN",)),
    ("refunds", "ck_refunds_refund_reason", "reason", REFUND_REASON_OLD, ("RETURN",)),
)
ITEM_CHECKS = (
    (
        "ck_order_items_shipped_within_quantity",
        "shipped_quantity >= 0 AND cancelled_quantity + shipped_quantity <= quantity",
    ),
    (
        "ck_order_items_delivered_within_shipped",
        "delivered_quantity >= 0 AND delivered_quantity <= shipped_quantity",
    ),
    (
        "ck_order_items_returns_within_delivered",
        "return_requested_quantity >= 0 AND returned_quantity >= 0 "
        "AND return_requested_quantity + returned_quantity <= delivered_quantity",
    ),
)


def _values_check(table: str, name: str, column: str, values: Sequence[str]) -> None:
    op.drop_constraint(op.f(name), table, type_="check")
    listed = ", ".join(f"'{v}'" for v in values)
    op.create_check_constraint(op.f(name), table, f"{column} IN ({listed})")


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=13), nullable=False),
        sa.Column("line1", sa.String(length=200), nullable=False),
        sa.Column("line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("pin_code", sa.String(length=6), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "phone ~ '^\\+91[6-9][0-9]{9}$'", name=op.f("ck_addresses_phone_e164_india")
        ),
        sa.CheckConstraint(
            "pin_code ~ '^[1-9][0-9]{5}$'", name=op.f("ck_addresses_pin_code_format")
        ),
        sa.CheckConstraint(
            "state IN ('AP', 'AR', 'AS', 'BR', 'CG', 'GA', 'GJ', 'HR', 'HP', 'JH', 'KA', 'KL', 'MP', 'MH', 'MN', 'ML', 'MZ', 'NL', 'OD', 'PB', 'RJ', 'SK', 'TN', 'TS', 'TR', 'UP', 'UK', 'WB', 'AN', 'CH', 'DH', 'DL', 'JK', 'LA', 'LD', 'PY')",
            name=op.f("ck_addresses_state_code"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_addresses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
    )
    op.create_index(
        "ix_addresses_user_listing", "addresses", ["user_id", "created_at"], unique=False
    )
    op.create_index(
        "uq_addresses_one_default_per_user",
        "addresses",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "order_addresses",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("address_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=13), nullable=False),
        sa.Column("line1", sa.String(length=200), nullable=False),
        sa.Column("line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("pin_code", sa.String(length=6), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "phone ~ '^\\+91[6-9][0-9]{9}$'", name=op.f("ck_order_addresses_phone_e164_india")
        ),
        sa.CheckConstraint(
            "pin_code ~ '^[1-9][0-9]{5}$'", name=op.f("ck_order_addresses_pin_code_format")
        ),
        sa.CheckConstraint(
            "state IN ('AP', 'AR', 'AS', 'BR', 'CG', 'GA', 'GJ', 'HR', 'HP', 'JH', 'KA', 'KL', 'MP', 'MH', 'MN', 'ML', 'MZ', 'NL', 'OD', 'PB', 'RJ', 'SK', 'TN', 'TS', 'TR', 'UP', 'UK', 'WB', 'AN', 'CH', 'DH', 'DL', 'JK', 'LA', 'LD', 'PY')",
            name=op.f("ck_order_addresses_state_code"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_addresses_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_addresses")),
    )
    op.create_table(
        "shipments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("seller_id", sa.Uuid(), nullable=False),
        sa.Column("carrier", sa.String(length=60), nullable=False),
        sa.Column("tracking_number", sa.String(length=60), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "SHIPPED",
                "DELIVERED",
                name="shipment_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'DELIVERED') = (delivered_at IS NOT NULL)",
            name=op.f("ck_shipments_delivered_when_dated"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_shipments_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["users.id"], name=op.f("fk_shipments_seller_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
    )
    op.create_index(op.f("ix_shipments_order_id"), "shipments", ["order_id"], unique=False)
    op.create_index(op.f("ix_shipments_seller_id"), "shipments", ["seller_id"], unique=False)
    op.create_table(
        "shipment_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("order_item_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_shipment_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_item_id"],
            ["order_items.id"],
            name=op.f("fk_shipment_lines_order_item_id_order_items"),
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_shipment_lines_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_lines")),
        sa.UniqueConstraint("shipment_id", "order_item_id", name="uq_shipment_lines_shipment_item"),
    )
    op.create_index(
        op.f("ix_shipment_lines_order_item_id"), "shipment_lines", ["order_item_id"], unique=False
    )
    op.create_index(
        op.f("ix_shipment_lines_shipment_id"), "shipment_lines", ["shipment_id"], unique=False
    )
    op.create_table(
        "returns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("order_item_id", sa.Uuid(), nullable=False),
        sa.Column("seller_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "REQUESTED",
                "APPROVED",
                "REJECTED",
                "RECEIVED",
                name="return_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("rejection_reason", sa.String(length=500), nullable=True),
        sa.Column("restocked", sa.Boolean(), nullable=True),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'RECEIVED') = (refund_id IS NOT NULL)",
            name=op.f("ck_returns_refunded_when_received"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_returns_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_returns_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["order_item_id"], ["order_items.id"], name=op.f("fk_returns_order_item_id_order_items")
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_returns_refund_id_refunds")
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["users.id"], name=op.f("fk_returns_seller_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_returns_refund_id")),
    )
    op.create_index(op.f("ix_returns_order_id"), "returns", ["order_id"], unique=False)
    op.create_index(op.f("ix_returns_order_item_id"), "returns", ["order_item_id"], unique=False)
    op.create_index(op.f("ix_returns_seller_id"), "returns", ["seller_id"], unique=False)
    op.add_column(
        "order_items",
        sa.Column("shipped_quantity", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "order_items",
        sa.Column("delivered_quantity", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "order_items",
        sa.Column("return_requested_quantity", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "order_items",
        sa.Column("returned_quantity", sa.Integer(), server_default="0", nullable=False),
    )
    for name, condition in ITEM_CHECKS:
        op.create_check_constraint(op.f(name), "order_items", condition)
    for table, name, column, before, added in ENUM_CHECKS:
        _values_check(table, name, column, (*before, *added))


def downgrade() -> None:
    # Rows that reached a new status or reason cannot go back: refuse rather than guess.
    for table, name, column, before, _ in ENUM_CHECKS:
        _values_check(table, name, column, before)
    for name, _ in ITEM_CHECKS:
        op.drop_constraint(op.f(name), "order_items", type_="check")
    op.drop_column("order_items", "returned_quantity")
    op.drop_column("order_items", "return_requested_quantity")
    op.drop_column("order_items", "delivered_quantity")
    op.drop_column("order_items", "shipped_quantity")
    op.drop_index(op.f("ix_returns_seller_id"), table_name="returns")
    op.drop_index(op.f("ix_returns_order_item_id"), table_name="returns")
    op.drop_index(op.f("ix_returns_order_id"), table_name="returns")
    op.drop_table("returns")
    op.drop_index(op.f("ix_shipment_lines_shipment_id"), table_name="shipment_lines")
    op.drop_index(op.f("ix_shipment_lines_order_item_id"), table_name="shipment_lines")
    op.drop_table("shipment_lines")
    op.drop_index(op.f("ix_shipments_seller_id"), table_name="shipments")
    op.drop_index(op.f("ix_shipments_order_id"), table_name="shipments")
    op.drop_table("shipments")
    op.drop_table("order_addresses")
    op.drop_index(
        "uq_addresses_one_default_per_user",
        table_name="addresses",
        postgresql_where=sa.text("is_default"),
    )
    op.drop_index("ix_addresses_user_listing", table_name="addresses")
    op.drop_table("addresses")
