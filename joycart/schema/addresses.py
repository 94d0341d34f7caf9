"""GraphQL fields for the buyer's address book and the address an order ships to."""

from __future__ import annotations

from datetime import datetime

import strawberry

from joycart import models
from joycart.models import Role
from joycart.models.addresses import INDIAN_STATES, UNION_TERRITORIES
from joycart.resolvers import addresses
from joycart.resolvers.addresses import AddressFields
from joycart.schema.errors import UserError, user_errors
from joycart.schema.shopping import OrderPayload
from joycart.schema.types import JCInfo, Order

STATE_HELP = (
    "A state or union territory of India: its ISO 3166-2:IN code (KA, MH, DL, ...; the codes "
    "replaced in 2023, such as OR or TG, are accepted too) or its name ('Karnataka'). The "
    "`indianStates` query lists all 36. Stored and shown as the code."
)


@strawberry.type(description="One of India's 28 states and 8 union territories.")
class IndianState:
    code: str = strawberry.field(description="ISO 3166-2:IN code without the IN- prefix.")
    name: str
    union_territory: bool


@strawberry.type(description="An entry of the caller's address book.")
class Address:
    id: strawberry.ID
    name: str
    phone: str = strawberry.field(description="E.164, always +91 and 10 digits.")
    line1: str
    line2: str | None
    city: str
    state: str = strawberry.field(description="ISO 3166-2:IN code, for example KA.")
    state_name: str
    pin_code: str
    is_default: bool
    created_at: datetime

    @classmethod
    def of(cls, row: models.Address) -> Address:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            phone=row.phone,
            line1=row.line1,
            line2=row.line2,
            city=row.city,
            state=row.state,
            state_name=INDIAN_STATES[row.state],
            pin_code=row.pin_code,
            is_default=row.is_default,
            created_at=row.created_at,
        )


@strawberry.type(
    description="Where an order ships: a copy of an address-book entry, which later edits of "
    "the address book do not change."
)
class ShippingAddress:
    name: str
    phone: str
    line1: str
    line2: str | None
    city: str
    state: str
    state_name: str
    pin_code: str

    @classmethod
    def of(cls, row: models.OrderAddress) -> ShippingAddress:
        return cls(
            name=row.name,
            phone=row.phone,
            line1=row.line1,
            line2=row.line2,
            city=row.city,
            state=row.state,
            state_name=INDIAN_STATES[row.state],
            pin_code=row.pin_code,
        )


async def order_shipping_address(info: JCInfo, order: models.Order) -> ShippingAddress | None:
    """`Order.shippingAddress`: shown to whoever may see the order (its buyer, and the sellers
    of its items, who need it to ship)."""
    row = await info.context.loaders.address_by_order.load(order.id)
    return ShippingAddress.of(row) if row is not None else None


@strawberry.input
class AddressInput:
    name: str
    phone: str = strawberry.field(
        description="An Indian mobile number: 98765 43210, +91-9876543210, 09876543210 ..."
    )
    line1: str
    city: str
    state: str = strawberry.field(description=STATE_HELP)
    pin_code: str = strawberry.field(description="6 digits, not starting with 0.")
    line2: str | None = None
    is_default: bool = strawberry.field(
        default=False, description="Make it the default (the first address always is)."
    )


@strawberry.input(description="The fields to change; those left out (or null) stay as they are.")
class UpdateAddressInput:
    name: str | None = None
    phone: str | None = None
    line1: str | None = None
    line2: str | None = strawberry.field(default=None, description="An empty string clears it.")
    city: str | None = None
    state: str | None = strawberry.field(default=None, description=STATE_HELP)
    pin_code: str | None = None
    is_default: bool | None = strawberry.field(
        default=None, description="true makes it the default; false leaves no default."
    )


def _fields(given: AddressInput | UpdateAddressInput) -> AddressFields:
    return AddressFields(
        name=given.name,
        phone=given.phone,
        line1=given.line1,
        line2=given.line2,
        city=given.city,
        state=given.state,
        pin_code=given.pin_code,
    )


@strawberry.type
class AddressPayload:
    address: Address | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteAddressPayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddressesQuery:
    @strawberry.field(description="The caller's address book: the default first, then newest.")
    async def addresses(self, info: JCInfo) -> list[Address]:
        user = await info.context.require_user()
        async with info.context.read() as session:
            return [Address.of(r) for r in await addresses.list_addresses(session, buyer=user)]

    @strawberry.field(description="India's states and union territories, for an address form.")
    def indian_states(self) -> list[IndianState]:
        return [
            IndianState(code=code, name=name, union_territory=code in UNION_TERRITORIES)
            for code, name in INDIAN_STATES.items()
        ]


@strawberry.type
class AddressesMutation:
    @strawberry.mutation(description="Add an address to the caller's address book (buyers).")
    @user_errors(AddressPayload)
    async def add_address(self, info: JCInfo, input: AddressInput) -> AddressPayload:
        buyer = await info.context.require_user(Role.USER)
        async with info.context.transaction() as session:
            row = await addresses.add_address(
                session, buyer=buyer, fields=_fields(input), make_default=input.is_default
            )
        return AddressPayload(address=Address.of(row))

    @strawberry.mutation(description="Change an address; orders already placed keep their copy.")
    @user_errors(AddressPayload)
    async def update_address(
        self, info: JCInfo, id: strawberry.ID, input: UpdateAddressInput
    ) -> AddressPayload:
        buyer = await info.context.require_user(Role.USER)
        async with info.context.transaction() as session:
            row = await addresses.update_address(
                session,
                buyer=buyer,
                address_id=id,
                fields=_fields(input),
                make_default=input.is_default,
            )
        return AddressPayload(address=Address.of(row))

    @strawberry.mutation(description="Delete an address; orders already placed keep their copy.")
    @user_errors(DeleteAddressPayload)
    async def delete_address(self, info: JCInfo, id: strawberry.ID) -> DeleteAddressPayload:
        buyer = await info.context.require_user(Role.USER)
        async with info.context.transaction() as session:
            deleted = await addresses.delete_address(session, buyer=buyer, address_id=id)
        return DeleteAddressPayload(deleted_id=strawberry.ID(str(deleted)))

    @strawberry.mutation(
        description="Choose where one of the caller's orders ships (a copy of the address), any "
        "time before its first shipment."
    )
    @user_errors(OrderPayload)
    async def set_order_shipping_address(
        self, info: JCInfo, order_id: strawberry.ID, address_id: strawberry.ID
    ) -> OrderPayload:
        buyer = await info.context.require_user(Role.USER)
        async with info.context.transaction() as session:
            order = await addresses.set_order_shipping_address(
                session, buyer=buyer, order_id=order_id, address_id=address_id
            )
        return OrderPayload(order=Order.of(order))
