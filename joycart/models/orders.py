"""Orders, their items (snapshots of what was bought) and the order event log."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from joycart.models.base import (
    Base,
    created_at_column,
    enum_column,
    updated_at_column,
    uuid_pk,
)


class OrderStatus(enum.Enum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    # After payment, derived from the items' unit counts (resolvers/progress.py says how).
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    PARTIALLY_RETURNED = "PARTIALLY_RETURNED"
    RETURNED = "RETURNED"


class OrderItemStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    CANCELLED = "CANCELLED"
    # Derived from the item's unit counts, by the same rule as the order's status.
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    PARTIALLY_RETURNED = "PARTIALLY_RETURNED"
    RETURNED = "RETURNED"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("buyer_id", "idempotency_key", name="uq_orders_buyer_idempotency_key"),
        Index("ix_orders_buyer_listing", "buyer_id", "created_at", "id"),
        Index(
            "ix_orders_pending_expiry",
            "expires_at",
            postgresql_where=text("status = 'PENDING_PAYMENT'"),
        ),
        CheckConstraint("total_amount >= 0", name="total_non_negative"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus, "order_status"))
    total_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "cancelled_quantity >= 0 AND cancelled_quantity <= quantity",
            name="cancelled_within_quantity",
        ),
        # Every unit is in one place: not cancelled units ship at most once, only shipped units
        # are delivered, only delivered units are returned (or in a return).
        CheckConstraint(
            "shipped_quantity >= 0 AND cancelled_quantity + shipped_quantity <= quantity",
            name="shipped_within_quantity",
        ),
        CheckConstraint(
            "delivered_quantity >= 0 AND delivered_quantity <= shipped_quantity",
            name="delivered_within_shipped",
        ),
        CheckConstraint(
            "return_requested_quantity >= 0 AND returned_quantity >= 0 "
            "AND return_requested_quantity + returned_quantity <= delivered_quantity",
            name="returns_within_delivered",
        ),
        Index("ix_order_items_seller_listing", "seller_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id"), index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    product_name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    quantity: Mapped[int] = mapped_column(Integer)
    cancelled_quantity: Mapped[int] = mapped_column(Integer, default=0)
    # Units still active when the order was paid: every one cancelled later is refunded.
    paid_quantity: Mapped[int | None] = mapped_column(Integer)
    # Cumulative counts; each is within the one before (see the CHECKs above). The units in
    # each place: awaiting shipment = quantity - cancelled - shipped; in transit = shipped -
    # delivered; kept = delivered - return requested - returned.
    shipped_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delivered_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Units in a return not yet received or rejected (a current count, not cumulative).
    return_requested_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[OrderItemStatus] = mapped_column(
        enum_column(OrderItemStatus, "order_item_status"), default=OrderItemStatus.ACTIVE
    )
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()

    @property
    def active_quantity(self) -> int:
        return self.quantity - self.cancelled_quantity

    @property
    def awaiting_shipment(self) -> int:
        """Units neither cancelled nor shipped: the only ones a cancel may still take."""
        return self.quantity - self.cancelled_quantity - self.shipped_quantity

    @property
    def returnable_quantity(self) -> int:
        """Delivered units not returned and not in a return (the return window aside)."""
        return self.delivered_quantity - self.return_requested_quantity - self.returned_quantity


class OrderEvent(Base):
    """What happened to an order, who or what did it, and from which webhook or job."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    # What changed: the order itself, or one of its rows (ITEM, PAYMENT, REFUND, ...).
    subject: Mapped[str] = mapped_column(String(16), default="ORDER", server_default="ORDER")
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    # The item the event concerns, if any: what a seller of that item may read of the history.
    order_item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("order_items.id"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(120))
    webhook_event_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_events.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = created_at_column()
