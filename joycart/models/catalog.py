"""Products, their images and the stock ledger (every stock change is a row)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    column,
    func,
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

MIN_PRICE = 100  # paise: Razorpay's minimum amount is INR 1.00
MAX_PRICE = 10_000_000_00  # one crore rupees per unit, in paise
MAX_STOCK = 1_000_000


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint(f"price >= {MIN_PRICE} AND price <= {MAX_PRICE}", name="price_range"),
        Index(
            "ix_products_name_trgm",
            func.lower(column("name")).label("name_lower"),
            postgresql_using="gin",
            # The operator class as an option, not in the expression: autogenerate can compare it.
            postgresql_ops={"name_lower": "gin_trgm_ops"},
        ),
        Index(
            "ix_products_listing", "created_at", "id", postgresql_where=text("deleted_at IS NULL")
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="INR", server_default="INR")
    stock: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class ImageStore(enum.Enum):
    LOCAL = "LOCAL"
    CLOUDINARY = "CLOUDINARY"


class ProductImage(Base):
    __tablename__ = "product_images"

    id: Mapped[uuid.UUID] = uuid_pk()
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    store: Mapped[ImageStore] = mapped_column(enum_column(ImageStore, "image_store"))
    key: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(1000))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()


class StockReason(enum.Enum):
    INITIAL = "INITIAL"
    ADJUSTMENT = "ADJUSTMENT"
    CHECKOUT = "CHECKOUT"
    CANCELLATION = "CANCELLATION"
    EXPIRY = "EXPIRY"
    RETURN = "RETURN"  # returned units the seller put back on the shelf


class StockMovement(Base):
    """One change of a product's stock; `products.stock` always equals the sum of its rows."""

    __tablename__ = "stock_ledger"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[StockReason] = mapped_column(enum_column(StockReason, "stock_reason"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()
