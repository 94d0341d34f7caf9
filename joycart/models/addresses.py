"""The buyer's address book, and the address an order ships to (a copy, never a reference).

Addresses are Indian: a mobile number stored as E.164 (`+91` and ten digits starting 6-9), a state
or union territory as its ISO 3166-2:IN code, and a six-digit PIN code that does not start with 0.
The CHECK constraints repeat those rules so no code path can store anything else.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from joycart.models.base import Base, created_at_column, updated_at_column, uuid_pk

# ISO 3166-2:IN, as revised in 2023 (CG, OD, TS, UK replaced CT, OR, TG, UT): 28 states, then
# the 8 union territories.
INDIAN_STATES: Mapping[str, str] = {
    "AP": "Andhra Pradesh",
    "AR": "Arunachal Pradesh",
    "AS": "Assam",
    "BR": "Bihar",
    "CG": "Chhattisgarh",
    "GA": "Goa",
    "GJ": "Gujarat",
    "HR": "Haryana",
    "HP": "Himachal Pradesh",
    "JH": "Jharkhand",
    "KA": "Karnataka",
    "KL": "Kerala",
    "MP": "Madhya Pradesh",
    "MH": "Maharashtra",
    "MN": "Manipur",
    "ML": "Meghalaya",
    "MZ": "Mizoram",
    "NL": "Nagaland",
    "OD": "Odisha",
    "PB": "Punjab",
    "RJ": "Rajasthan",
    "SK": "Sikkim",
    "TN": "Tamil Nadu",
    "TS": "Telangana",
    "TR": "Tripura",
    "UP": "Uttar Pradesh",
    "UK": "Uttarakhand",
    "WB": "West Bengal",
    "AN": "Andaman and Nicobar Islands",
    "CH": "Chandigarh",
    "DH": "Dadra and Nagar Haveli and Daman and Diu",
    "DL": "Delhi",
    "JK": "Jammu and Kashmir",
    "LA": "Ladakh",
    "LD": "Lakshadweep",
    "PY": "Puducherry",
}
UNION_TERRITORIES = frozenset({"AN", "CH", "DH", "DL", "JK", "LA", "LD", "PY"})

PHONE_SQL = r"^\+91[6-9][0-9]{9}$"
PIN_SQL = "^[1-9][0-9]{5}$"
_STATE_SQL = "state IN (" + ", ".join(f"'{code}'" for code in INDIAN_STATES) + ")"

NAME_MAX = 100
LINE_MAX = 200
CITY_MAX = 100


def _india_checks() -> tuple[CheckConstraint, ...]:
    return (
        CheckConstraint(f"phone ~ '{PHONE_SQL}'", name="phone_e164_india"),
        CheckConstraint(f"pin_code ~ '{PIN_SQL}'", name="pin_code_format"),
        CheckConstraint(_STATE_SQL, name="state_code"),
    )


class Address(Base):
    """One entry of a buyer's address book; at most one per buyer is the default."""

    __tablename__ = "addresses"
    __table_args__ = (
        *_india_checks(),
        Index(
            "uq_addresses_one_default_per_user",
            "user_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        Index("ix_addresses_user_listing", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    phone: Mapped[str] = mapped_column(String(13))
    line1: Mapped[str] = mapped_column(String(LINE_MAX))
    line2: Mapped[str | None] = mapped_column(String(LINE_MAX))
    city: Mapped[str] = mapped_column(String(CITY_MAX))
    state: Mapped[str] = mapped_column(String(2))
    pin_code: Mapped[str] = mapped_column(String(6))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class OrderAddress(Base):
    """Where an order ships: copied from the address book, so later edits there never move it."""

    __tablename__ = "order_addresses"
    __table_args__ = _india_checks()

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    # The book entry it was copied from; no foreign key: the buyer may delete that entry later.
    address_id: Mapped[uuid.UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    phone: Mapped[str] = mapped_column(String(13))
    line1: Mapped[str] = mapped_column(String(LINE_MAX))
    line2: Mapped[str | None] = mapped_column(String(LINE_MAX))
    city: Mapped[str] = mapped_column(String(CITY_MAX))
    state: Mapped[str] = mapped_column(String(2))
    pin_code: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
