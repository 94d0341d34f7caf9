"""The buyer's address book, and the copy of an address an order ships to.

Rules:
- Every field is checked before anything is written; a bad one is INVALID_INPUT naming it.
- Phone: an Indian mobile number in any common form ("98765 43210", "+91-9876543210",
  "09876543210", "919876543210"), stored as E.164 (`+919876543210`).
- State: one of the 28 states and 8 union territories, given as its ISO 3166-2:IN code ("KA",
  "IN-KA", the pre-2023 codes too) or its name ("Karnataka"); stored as the code.
- PIN code: six digits, not starting with 0 ("560 001" is accepted).
- A buyer keeps at most `MAX_ADDRESSES`, and at most one default: the first address becomes it,
  `isDefault: true` moves it, deleting it leaves none.
- An order holds a copy (`OrderAddress`): editing or deleting the book entry never moves a parcel.
  The buyer may change it until the first shipment.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.errors import Forbidden, IdempotencyKeyReused, InvalidInput, InvalidState, NotFound
from joycart.models import Address, Order, OrderAddress, OrderStatus, Role, Shipment, User
from joycart.models.addresses import CITY_MAX, INDIAN_STATES, LINE_MAX, NAME_MAX
from joycart.models.base import detached
from joycart.resolvers import states

MAX_ADDRESSES = 20

_PHONE_RE = re.compile(r"^(?:\+91|0091|91|0)?([6-9][0-9]{9})$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PIN_RE = re.compile(r"^[1-9][0-9]{5}$")
# Codes ISO 3166-2:IN replaced (2020 merger of Dadra and Nagar Haveli with Daman and Diu; 2023
# revision), still on forms people fill in.
_OLD_STATE_CODES = {"CT": "CG", "OR": "OD", "TG": "TS", "UT": "UK", "DN": "DH", "DD": "DH"}
_STATE_NAMES = {name.lower(): code for code, name in INDIAN_STATES.items()} | {
    "orissa": "OD",
    "pondicherry": "PY",
    "andaman & nicobar islands": "AN",
    "jammu & kashmir": "JK",
    "nct of delhi": "DL",
}


def indian_mobile(raw: str, *, field: str = "phone") -> str:
    """`raw` as E.164 (+91 and ten digits starting 6-9), or INVALID_INPUT naming `field`."""
    digits = _PHONE_SEPARATORS.sub("", raw)
    match = _PHONE_RE.match(digits) if len(digits) <= 16 else None
    if match is None:
        raise InvalidInput(
            "Enter an Indian mobile number: 10 digits starting with 6, 7, 8 or 9, optionally "
            "after +91 or 0 (for example +91 98765 43210).",
            field=field,
        )
    return f"+91{match.group(1)}"


def pin_code(raw: str, *, field: str = "pinCode") -> str:
    cleaned = re.sub(r"\s", "", raw)
    if not _PIN_RE.match(cleaned):
        raise InvalidInput(
            "A PIN code is 6 digits and does not start with 0 (for example 560001).", field=field
        )
    return cleaned


def state_code(raw: str, *, field: str = "state") -> str:
    cleaned = " ".join(raw.split())
    upper = cleaned.upper().removeprefix("IN-")
    code = upper if upper in INDIAN_STATES else _OLD_STATE_CODES.get(upper)
    code = code or _STATE_NAMES.get(cleaned.lower())
    if code is None:
        raise InvalidInput(
            "state must be one of India's states or union territories, as its ISO 3166-2:IN "
            "code (KA, MH, DL, ...) or its name (see the indianStates query).",
            field=field,
        )
    return code


@dataclass(frozen=True)
class AddressFields:
    """What a buyer types in; every field optional so an update can change a few."""

    name: str | None = None
    phone: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    pin_code: str | None = None


def _clean(fields: AddressFields) -> dict[str, str | None]:
    """The given fields, checked and normalized; raises on the first bad one."""
    out: dict[str, str | None] = {}
    if fields.name is not None:
        out["name"] = validation.text(
            fields.name, field="name", min_len=1, max_len=NAME_MAX, label="name"
        )
    if fields.phone is not None:
        out["phone"] = indian_mobile(fields.phone)
    if fields.line1 is not None:
        out["line1"] = validation.text(
            fields.line1, field="line1", min_len=1, max_len=LINE_MAX, label="line1"
        )
    if fields.line2 is not None:  # an empty line2 clears it
        line2 = validation.text(
            fields.line2, field="line2", min_len=0, max_len=LINE_MAX, label="line2"
        )
        out["line2"] = line2 or None
    if fields.city is not None:
        out["city"] = validation.text(
            fields.city, field="city", min_len=1, max_len=CITY_MAX, label="city"
        )
    if fields.state is not None:
        out["state"] = state_code(fields.state)
    if fields.pin_code is not None:
        out["pin_code"] = pin_code(fields.pin_code)
    return out


async def _lock_book(session: AsyncSession, buyer: User) -> None:
    """One address-book change per buyer at a time: the cap and the one default hold."""
    if buyer.role is not Role.USER:
        raise Forbidden("Only a buyer account has an address book.")
    await session.execute(
        select(User.id).where(User.id == buyer.id).with_for_update(key_share=True)
    )


async def _own(session: AsyncSession, buyer: User, address_id: str, *, field: str) -> Address:
    aid = validation.parse_id(address_id, field=field, what="address")
    address = await session.get(Address, aid, populate_existing=True)
    if address is None or address.user_id != buyer.id:
        raise NotFound("No address with that ID.", field=field)
    return address


async def _make_default(session: AsyncSession, buyer: User, address: Address) -> None:
    await session.execute(
        update(Address)
        .where(Address.user_id == buyer.id, Address.is_default, Address.id != address.id)
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    address.is_default = True


async def list_addresses(session: AsyncSession, *, buyer: User) -> list[Address]:
    """The buyer's addresses: the default first, then newest first."""
    rows = await session.scalars(
        select(Address)
        .where(Address.user_id == buyer.id)
        .order_by(Address.is_default.desc(), Address.created_at.desc(), Address.id)
    )
    return list(rows.all())


async def add_address(
    session: AsyncSession, *, buyer: User, fields: AddressFields, make_default: bool
) -> Address:
    """Add an address (every field but line2 required); the buyer's first becomes the default."""
    cleaned = _clean(fields)
    for required in ("name", "phone", "line1", "city", "state", "pin_code"):
        if cleaned.get(required) is None:
            camel = "pinCode" if required == "pin_code" else required
            raise InvalidInput(f"{camel} is required.", field=camel)
    await _lock_book(session, buyer)
    count = await session.scalar(
        select(func.count()).select_from(Address).where(Address.user_id == buyer.id)
    )
    if (count or 0) >= MAX_ADDRESSES:
        raise InvalidInput(
            f"An address book holds at most {MAX_ADDRESSES} addresses; delete one first."
        )
    address = Address(id=uuid.uuid4(), user_id=buyer.id, is_default=False, **cleaned)
    session.add(address)
    await session.flush()
    if make_default or not count:
        await _make_default(session, buyer, address)
    await session.flush()
    return address


async def update_address(
    session: AsyncSession,
    *,
    buyer: User,
    address_id: str,
    fields: AddressFields,
    make_default: bool | None,
) -> Address:
    """Change some fields of one of the buyer's addresses; orders keep the copy they have."""
    cleaned = _clean(fields)
    await _lock_book(session, buyer)
    address = await _own(session, buyer, address_id, field="id")
    for name, value in cleaned.items():
        setattr(address, name, value)
    if make_default:
        await _make_default(session, buyer, address)
    elif make_default is False:
        address.is_default = False
    await session.flush()
    return address


async def delete_address(session: AsyncSession, *, buyer: User, address_id: str) -> uuid.UUID:
    """Delete one of the buyer's addresses; orders keep the copy they have."""
    await _lock_book(session, buyer)
    address = await _own(session, buyer, address_id, field="id")
    await session.delete(address)
    await session.flush()
    return address.id


_DEFAULT = select(Address.__table__).where(Address.user_id == bindparam("user"), Address.is_default)


async def checkout_address(
    session: AsyncSession, *, buyer: User, address_id: str | None
) -> Address | None:
    """The address an order placed now ships to: the one named, else the default, else none."""
    if address_id is not None:
        return await _own(session, buyer, address_id, field="shippingAddressId")
    conn = await session.connection()  # every checkout asks: a statement built once, no ORM load
    found = (await conn.execute(_DEFAULT, {"user": buyer.id})).one_or_none()
    return None if found is None else detached(Address, found._mapping)


async def same_address_as(session: AsyncSession, order: Order, address_id: str | None) -> None:
    """A repeated checkout naming an address must name the one its order ships to.

    The address is part of the request the idempotency key stands for: returning an order that
    ships somewhere else than the repeat asked would send a parcel to the wrong place. A repeat
    that names no address (every client before addresses existed) gets the order as it is.
    """
    if address_id is None:
        return
    current = await session.get(OrderAddress, order.id)
    try:
        same = current is not None and current.address_id == uuid.UUID(address_id)
    except ValueError:
        same = False
    if not same:
        raise IdempotencyKeyReused(
            "This idempotency key was used for an order that ships to another address; use a "
            "new key, or setOrderShippingAddress to change where that order ships.",
            field="shippingAddressId",
        )


def _copy(order_address: OrderAddress, address: Address) -> None:
    order_address.address_id = address.id
    for name in ("name", "phone", "line1", "line2", "city", "state", "pin_code"):
        setattr(order_address, name, getattr(address, name))


def ship_to(session: AsyncSession, order: Order, address: Address) -> OrderAddress:
    """Copy `address` onto a new order (checkout, in the order's own transaction)."""
    copy = OrderAddress(order_id=order.id)
    _copy(copy, address)
    session.add(copy)
    return copy


async def set_order_shipping_address(
    session: AsyncSession, *, buyer: User, order_id: str, address_id: str
) -> Order:
    """The buyer chooses where an order ships, any time before its first shipment."""
    oid = validation.parse_id(order_id, field="orderId", what="order")
    order = await session.get(Order, oid, with_for_update=True, populate_existing=True)
    if order is None or order.buyer_id != buyer.id:
        raise NotFound("No order with that ID.", field="orderId")
    address = await _own(session, buyer, address_id, field="addressId")
    if order.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        raise InvalidState(f"The order is {order.status.value.lower()}; it will not ship.")
    if await session.scalar(select(Shipment.id).where(Shipment.order_id == order.id).limit(1)):
        raise InvalidState("Part of this order has shipped; its address can no longer change.")
    current = await session.get(OrderAddress, order.id, with_for_update=True)
    if current is None:
        current = ship_to(session, order, address)
    else:
        _copy(current, address)
    states.record(
        session,
        order,
        "SHIPPING_ADDRESS_SET",
        actor=f"buyer:{buyer.id}",
        address_id=str(address.id),
        city=address.city,
        state=address.state,
        pin_code=address.pin_code,
    )
    await session.flush()
    return order
