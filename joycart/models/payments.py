"""Payment sessions (one Razorpay order each), captures reported by Razorpay, and refunds."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from joycart.models.base import (
    Base,
    created_at_column,
    enum_column,
    updated_at_column,
    uuid_pk,
)


class PaymentStatus(enum.Enum):
    CREATED = "CREATED"
    CAPTURED = "CAPTURED"
    FAILED = "FAILED"
    SUPERSEDED = "SUPERSEDED"  # the order changed while unpaid; a newer session replaced it
    CANCELLED = "CANCELLED"  # the order ended (cancelled or expired) before any capture


class Payment(Base):
    """A payment session: what the order owed when it was opened, and its Razorpay order."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("order_id", "sequence", name="uq_payments_order_sequence"),
        CheckConstraint("amount >= 100", name="amount_minimum"),
        Index(
            "uq_payments_one_open_per_order",
            "order_id",
            unique=True,
            postgresql_where=text("status IN ('CREATED', 'CAPTURED', 'FAILED')"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    receipt: Mapped[str] = mapped_column(String(40), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus, "payment_status"))
    razorpay_order_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    razorpay_payment_id: Mapped[str | None] = mapped_column(String(40))
    gateway_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_gateway_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Capture(Base):
    """Money Razorpay reported captured for one of our sessions; `owed` says whether we keep it."""

    __tablename__ = "captures"

    id: Mapped[uuid.UUID] = uuid_pk()
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    gateway_payment_id: Mapped[str] = mapped_column(String(40), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    owed: Mapped[bool]
    created_at: Mapped[datetime] = created_at_column()


class RefundStatus(enum.Enum):
    INITIATED = "INITIATED"
    REFUNDED = "REFUNDED"
    FAILED = "FAILED"


class RefundReason(enum.Enum):
    CANCELLATION = "CANCELLATION"
    UNOWED_CAPTURE = "UNOWED_CAPTURE"
    RETURN = "RETURN"  # delivered units the seller received back


class Refund(Base):
    """One refund we asked Razorpay for; only its webhooks move it past INITIATED."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount >= 100", name="amount_minimum"),
        # Only the refunds not settled as REFUNDED: what /metrics reads at every scrape.
        Index(
            "ix_refunds_unsettled",
            "status",
            "created_at",
            postgresql_where=text("status <> 'REFUNDED'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    order_item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("order_items.id"), index=True
    )
    capture_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("captures.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[RefundReason] = mapped_column(enum_column(RefundReason, "refund_reason"))
    status: Mapped[RefundStatus] = mapped_column(enum_column(RefundStatus, "refund_status"))
    gateway_refund_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    gateway_attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(String(500))
    # A refund asked again after Razorpay failed this one; at most one retry per failed refund.
    retry_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("refunds.id"), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def idempotency_key(self) -> str:
        return f"joycart-refund-{self.id.hex}"
