"""Small input checks shared by operations; each failure names the offending field."""

from __future__ import annotations

import re
import uuid

from joycart.errors import InvalidInput, NotFound

EMAIL_RE = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def text(value: str, *, field: str, min_len: int, max_len: int, label: str) -> str:
    cleaned = value.strip()
    if not min_len <= len(cleaned) <= max_len:
        if min_len and not cleaned:
            raise InvalidInput(f"{label} must not be empty.", field=field)
        raise InvalidInput(
            f"{label} must be {min_len} to {max_len} characters (got {len(cleaned)}).", field=field
        )
    if any(ord(c) < 32 and c not in "\n\t" for c in cleaned):
        raise InvalidInput(f"{label} must not contain control characters.", field=field)
    return cleaned


def int_range(value: int, *, field: str, low: int, high: int, label: str) -> int:
    if not low <= value <= high:
        raise InvalidInput(f"{label} must be between {low} and {high} (got {value}).", field=field)
    return value


def email(value: str, *, field: str = "email") -> str:
    cleaned = value.strip()
    if len(cleaned) > 254 or not EMAIL_RE.match(cleaned) or not cleaned.isprintable():
        raise InvalidInput("Enter a valid email address, like name@example.com.", field=field)
    return cleaned


def parse_id(value: str, *, field: str, what: str) -> uuid.UUID:
    """Opaque IDs are UUIDs; anything else cannot name an object, so it is simply not found."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"No {what} with that ID.", field=field) from None
