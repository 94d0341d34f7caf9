"""The buyer's cart: lines of 1 to 100 units of live products, priced from the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.errors import Forbidden, InvalidInput, NotFound, OutOfStock
from joycart.models import CartItem, Product, Role, User
from joycart.models.cart import MAX_CART_LINES, MAX_LINE_QUANTITY


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> int:
        return self.product.price * self.quantity


@dataclass(frozen=True)
class CartView:
    lines: list[CartLine]

    @property
    def total(self) -> int:
        return sum(line.line_total for line in self.lines)


def _require_buyer(actor: User) -> None:
    if actor.role is not Role.USER:
        raise Forbidden("Only a buyer account has a cart.")


async def _live_product(session: AsyncSession, product_id: str) -> Product:
    pid = validation.parse_id(product_id, field="productId", what="product")
    product = await session.scalar(
        select(Product).where(Product.id == pid, Product.deleted_at.is_(None))
    )
    if product is None:
        raise NotFound("No product with that ID.", field="productId")
    return product


def _quantity(quantity: int, *, low: int) -> int:
    return validation.int_range(
        quantity, field="quantity", low=low, high=MAX_LINE_QUANTITY, label="Quantity"
    )


async def _set_line(session: AsyncSession, buyer: User, product: Product, quantity: int) -> None:
    if quantity > product.stock:
        raise OutOfStock(f"Only {product.stock} of {product.name!r} in stock.", field="quantity")
    lines = await session.scalar(
        select(func.count())
        .select_from(CartItem)
        .where(CartItem.user_id == buyer.id, CartItem.product_id != product.id)
    )
    if (lines or 0) >= MAX_CART_LINES:
        raise InvalidInput(f"A cart holds at most {MAX_CART_LINES} products.", field="productId")
    await session.execute(
        insert(CartItem)
        .values(user_id=buyer.id, product_id=product.id, quantity=quantity)
        .on_conflict_do_update(
            index_elements=[CartItem.user_id, CartItem.product_id], set_={"quantity": quantity}
        )
    )


async def add_to_cart(
    session: AsyncSession, *, buyer: User, product_id: str, quantity: int
) -> CartView:
    """Add units to a line (creating it); a line never holds more than 100."""
    _require_buyer(buyer)
    _quantity(quantity, low=1)
    product = await _live_product(session, product_id)
    current = await session.scalar(
        select(CartItem.quantity)
        .where(CartItem.user_id == buyer.id, CartItem.product_id == product.id)
        .with_for_update()
    )
    total = (current or 0) + quantity
    if total > MAX_LINE_QUANTITY:
        raise InvalidInput(
            f"A line holds at most {MAX_LINE_QUANTITY} units ({current} already in the cart).",
            field="quantity",
        )
    await _set_line(session, buyer, product, total)
    return await view_cart(session, buyer=buyer)


async def update_cart_item(
    session: AsyncSession, *, buyer: User, product_id: str, quantity: int
) -> CartView:
    """Set a line's quantity; 0 removes the line."""
    _require_buyer(buyer)
    _quantity(quantity, low=0)
    if quantity == 0:
        pid = validation.parse_id(product_id, field="productId", what="product")
        removed = await session.execute(
            delete(CartItem).where(CartItem.user_id == buyer.id, CartItem.product_id == pid)
        )
        if removed.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("That product is not in your cart.", field="productId")
    else:
        await _set_line(session, buyer, await _live_product(session, product_id), quantity)
    return await view_cart(session, buyer=buyer)


async def view_cart(session: AsyncSession, *, buyer: User) -> CartView:
    """The caller's cart with current prices; deleted products drop out."""
    if buyer.role is not Role.USER:
        return CartView(lines=[])
    rows = await session.execute(
        select(Product, CartItem.quantity)
        .join(CartItem, CartItem.product_id == Product.id)
        .where(CartItem.user_id == buyer.id, Product.deleted_at.is_(None))
        .order_by(CartItem.added_at, Product.id)
    )
    return CartView(lines=[CartLine(product=p, quantity=q) for p, q in rows.all()])
