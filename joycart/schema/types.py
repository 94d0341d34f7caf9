"""GraphQL object types, each built from a row it keeps privately (rows never leak as types).

One import point for every type: the shared and catalog types live in `catalog_types`, the
order types in `order_types`. Every object built from an account or order row carries the
`Viewer` it was built for; `joycart.schema.viewer` states the rule of who sees what.
"""

from joycart.schema.catalog_types import (
    Cart,
    CartItem,
    JCInfo,
    Money,
    Product,
    ProductImage,
    User,
    selected_subfields,
)
from joycart.schema.order_types import (
    AutomaticRefund,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    Refund,
)
from joycart.schema.viewer import ANONYMOUS, OrderScope, Viewer

__all__ = [
    "ANONYMOUS",
    "AutomaticRefund",
    "Cart",
    "CartItem",
    "JCInfo",
    "Money",
    "Order",
    "OrderEvent",
    "OrderItem",
    "OrderScope",
    "Payment",
    "Product",
    "ProductImage",
    "Refund",
    "User",
    "Viewer",
    "selected_subfields",
]
