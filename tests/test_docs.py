"""The README's GraphQL snippets are real: each one validates against the schema; the README and
the CHANGELOG name every fulfilment operation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import parse, validate

from joycart.schema import schema

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CHANGELOG = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```graphql\n(.*?)```", README, flags=re.DOTALL)
FULFILMENT_OPERATIONS = (
    "addAddress",
    "updateAddress",
    "deleteAddress",
    "addresses",
    "setOrderShippingAddress",
    "shippingAddressId",
    "createShipment",
    "markShipmentDelivered",
    "requestReturn",
    "approveReturn",
    "rejectReturn",
    "receiveReturn",
)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_every_readme_snippet_validates_against_the_schema(snippet: str) -> None:
    errors = validate(schema._schema, parse(snippet))
    assert errors == [], f"{snippet}\n{errors}"


def test_the_readme_walk_and_the_changelog_name_every_fulfilment_operation() -> None:
    walk = "\n".join(SNIPPETS)
    unreleased = CHANGELOG.split("## Unreleased", 1)[1].split("\n## ", 1)[0]
    for name in FULFILMENT_OPERATIONS:
        assert name in README, name
        assert name in unreleased, name
    for name in (
        "addAddress",
        "checkout",
        "createShipment",
        "markShipmentDelivered",
        "requestReturn",
        "approveReturn",
        "receiveReturn",
    ):
        assert re.search(rf"\b{name}\(", walk), f"the README walk has no {name} snippet"
    assert "JOYCART_RETURN_WINDOW_DAYS" in README
    assert "JOYCART_RETURN_WINDOW_DAYS" in unreleased
