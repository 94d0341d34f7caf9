"""GraphQL fields for buying: the cart and checkout."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import strawberry

from joycart.errors import JoyCartError
from joycart.models import Role
from joycart.observability import metrics
from joycart.resolvers import cart, checkout, confirm, limits
from joycart.resolvers.cart import CartView
from joycart.schema.auth import enforce_limits
from joycart.schema.errors import UserError, user_errors
from joycart.schema.types import Cart, CartItem, JCInfo, Money, Order, Product, Viewer


def _cart(view: CartView, viewer: Viewer) -> Cart:
    return Cart(
        items=[
            CartItem(
                product=Product.of(line.product, viewer),
                quantity=line.quantity,
                line_total=Money(amount=line.line_total, currency="INR"),
            )
            for line in view.lines
        ],
        total=Money(amount=view.total, currency="INR"),
    )


@strawberry.type
class CartPayload:
    cart: Cart | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CheckoutPayload:
    order: Order | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="The three fields Razorpay Checkout hands to its `handler`.")
class ConfirmPaymentInput:
    razorpay_order_id: str
    razorpay_payment_id: str
    razorpay_signature: str


@strawberry.type
class OrderPayload:
    order: Order | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ShoppingQuery:
    @strawberry.field(description="The caller's cart (empty for anonymous callers and sellers).")
    async def cart(self, info: JCInfo) -> Cart:
        user = await info.context.user()
        if user is None:
            return _cart(CartView(lines=[]), Viewer.of(user))
        async with info.context.read() as session:
            return _cart(await cart.view_cart(session, buyer=user), Viewer.of(user))


@strawberry.type
class ShoppingMutation:
    @strawberry.mutation(description="Add units of a product to the cart (a line holds 1–100).")
    @user_errors(CartPayload)
    async def add_to_cart(
        self, info: JCInfo, product_id: strawberry.ID, quantity: int
    ) -> CartPayload:
        buyer = await info.context.require_user(Role.USER)
        async with info.context.transaction() as session:
            view = await cart.add_to_cart(
                session, buyer=buyer, product_id=product_id, quantity=quantity
            )
        return CartPayload(cart=_cart(view, Viewer.of(buyer)))

    @strawberry.mutation(description="Set a line's quantity; 0 removes the line.")
    @user_errors(CartPayload)
    async def update_cart_item(
        self, info: JCInfo, product_id: strawberry.ID, quantity: int
    ) -> CartPayload:
        buyer = await info.context.require_user(Role.USER)
        async with info.context.transaction() as session:
            view = await cart.update_cart_item(
                session, buyer=buyer, product_id=product_id, quantity=quantity
            )
        return CartPayload(cart=_cart(view, Viewer.of(buyer)))

    @strawberry.mutation(
        description="Turn the cart into an order. The same key always returns the same order."
    )
    @user_errors(CheckoutPayload)
    async def checkout(
        self,
        info: JCInfo,
        idempotency_key: str,
        shipping_address_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="Ship to a copy of this address-book entry; by default, of the "
                "default address (or nowhere yet). A repeat with the same key that names an "
                "address must name the one the order ships to."
            ),
        ] = None,
    ) -> CheckoutPayload:
        ctx = info.context
        buyer = await ctx.require_user(Role.USER)
        try:
            result = await checkout.checkout(
                ctx.services.sessions,
                buyer=buyer,
                idempotency_key=idempotency_key,
                gateway=ctx.services.gateway,
                payment_window=timedelta(minutes=ctx.services.settings.payment_window_minutes),
                shipping_address_id=shipping_address_id,
            )
        except JoyCartError as exc:
            metrics.checkout_outcome(exc.code.value)
            raise
        metrics.checkout_outcome(
            "gateway_unavailable"
            if result.gateway_error
            else ("placed" if result.created else "replayed")
        )
        # The answer shows what was just committed, as written: no re-read of the same rows.
        ctx.loaders.payment_by_order.prime(result.order.id, result.payment)
        if result.items is not None:
            ctx.loaders.items_by_order.prime(result.order.id, result.items)
        order = Order.of(result.order, Viewer.of(buyer))
        errors = [UserError.of(result.gateway_error)] if result.gateway_error else []
        return CheckoutPayload(order=order, errors=errors)

    @strawberry.mutation(
        description="Report Razorpay Checkout's handler result. The signature is verified and "
        "Razorpay is asked about the payment; the order is PAID only if Razorpay reports the "
        "capture (otherwise its webhook settles it later). Never trusted on its own."
    )
    @user_errors(OrderPayload)
    async def confirm_payment(
        self, info: JCInfo, order_id: strawberry.ID, input: ConfirmPaymentInput
    ) -> OrderPayload:
        ctx = info.context
        buyer = await ctx.require_user(Role.USER)
        # Each confirmation asks Razorpay: a per-account cap keeps one client from spending our
        # API quota (and a signature oracle) at will.
        await enforce_limits(info, [(limits.CONFIRM_PAYMENT_PER_USER, str(buyer.id))])
        row = await confirm.confirm_payment(
            ctx.services.sessions,
            ctx.services.gateway,
            buyer=buyer,
            order_id=order_id,
            razorpay_order_id=input.razorpay_order_id,
            razorpay_payment_id=input.razorpay_payment_id,
            razorpay_signature=input.razorpay_signature,
        )
        return OrderPayload(order=Order.of(row, Viewer.of(buyer)))
