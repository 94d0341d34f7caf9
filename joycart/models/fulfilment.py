"""After payment: shipments of a seller's units, and returns of delivered units.

The unit counts these rows move live on the order item (`shipped_quantity` and so on, see
`models/orders.py`), changed under the order's row lock in the same transaction as the rows
here; `tests.helpers.assert_invariants` checks that the counts equal the sums of these rows.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from joycart.models.base import Base, created_at_column, enum_column, updated_at_column, uuid_pk


class ShipmentStatus(enum.Enum):
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"


class Shipment(Base):
    """A parcel one seller sent for one order: units of one or more of their items."""

    __tablename__ = "shipments"
    __table_args__ = (
        CheckConstraint(
            "(status = 'DELIVERED') = (delivered_at IS NOT NULL)", name="delivered_when_dated"
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(60))
    tracking_number: Mapped[str] = mapped_column(String(60))
    status: Mapped[ShipmentStatus] = mapped_column(enum_column(ShipmentStatus, "shipment_status"))
    shipped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class ShipmentLine(Base):
    """How many units of one order item a shipment holds."""

    __tablename__ = "shipment_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("shipment_id", "order_item_id", name="uq_shipment_lines_shipment_item"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    shipment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipments.id"), index=True)
    order_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_items.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)


class ReturnStatus(enum.Enum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    RECEIVED = "RECEIVED"


class Return(Base):
    """Delivered units of one item the buyer sends back; receiving them refunds exactly them."""

    __tablename__ = "returns"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "(status = 'RECEIVED') = (refund_id IS NOT NULL)", name="refunded_when_received"
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    order_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_items.id"), index=True)
    # The item's seller, copied: who decides on the return and who may see it.
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[ReturnStatus] = mapped_column(enum_column(ReturnStatus, "return_status"))
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    restocked: Mapped[bool | None] = mapped_column(Boolean)
    refund_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("refunds.id"), unique=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
