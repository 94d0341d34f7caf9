"""SQLAlchemy tables, one module per aggregate. Importing this package registers them all."""

from joycart.models.addresses import Address, OrderAddress
from joycart.models.base import Base
from joycart.models.cart import CartItem
from joycart.models.catalog import ImageStore, Product, ProductImage, StockMovement, StockReason
from joycart.models.fulfilment import Return, ReturnStatus, Shipment, ShipmentLine, ShipmentStatus
from joycart.models.leases import CallLease
from joycart.models.ops import Job, JobStatus, WebhookEvent
from joycart.models.orders import Order, OrderEvent, OrderItem, OrderItemStatus, OrderStatus
from joycart.models.payments import (
    Capture,
    Payment,
    PaymentStatus,
    Refund,
    RefundReason,
    RefundStatus,
)
from joycart.models.persisted import PersistedQuery
from joycart.models.users import RateLimitHit, RefreshToken, Role, User

__all__ = [
    "Address",
    "Base",
    "CallLease",
    "Capture",
    "CartItem",
    "ImageStore",
    "Job",
    "JobStatus",
    "Order",
    "OrderAddress",
    "OrderEvent",
    "OrderItem",
    "OrderItemStatus",
    "OrderStatus",
    "Payment",
    "PaymentStatus",
    "PersistedQuery",
    "Product",
    "ProductImage",
    "RateLimitHit",
    "RefreshToken",
    "Refund",
    "RefundReason",
    "RefundStatus",
    "Return",
    "ReturnStatus",
    "Role",
    "Shipment",
    "ShipmentLine",
    "ShipmentStatus",
    "StockMovement",
    "StockReason",
    "User",
    "WebhookEvent",
]
