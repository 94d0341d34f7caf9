"""Which answers a browser or a CDN may keep, and the headers that say so.

An answer is public only when all of these hold: it is a GET (POST answers are never reused by
caches), the request carries no `Authorization` header, the operation is a query whose every
root field (through fragments too) is in `PUBLIC_ROOT_FIELDS`, and the result has no errors.
Everything else is `private, no-store`. A root field is private unless it is listed here: a new
field cannot become cacheable by accident.
"""

from __future__ import annotations

import functools
import hashlib

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)

# The one allow-list: root Query fields whose answer is the same for every anonymous caller.
PUBLIC_ROOT_FIELDS = frozenset({"products", "product", "__typename"})

PRIVATE = "private, no-store"
VARY = "Authorization, Accept"


def public_cache_control(max_age: int) -> str:
    return f"public, max-age={max_age}"


@functools.lru_cache(maxsize=512)
def is_public_document(query: str, operation_name: str | None) -> bool:
    """True when the operation chosen from `query` is a query that reads only public root
    fields; anything that does not parse or names no single operation is not public."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operation = _operation(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names = _root_fields(operation.selection_set, fragments, set())
    return names is not None and names <= PUBLIC_ROOT_FIELDS


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _root_fields(
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> set[str] | None:
    """Every root field name the selection reaches; None when a fragment is missing."""
    names: set[str] = set()
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            inner = _root_fields(selection.selection_set, fragments, seen)
            if inner is None:
                return None
            names |= inner
        elif isinstance(selection, FragmentSpreadNode):
            fragment_name = selection.name.value
            if fragment_name in seen:
                continue  # a cycle is a validation error; the request will not run anyway
            fragment = fragments.get(fragment_name)
            if fragment is None:
                return None
            inner = _root_fields(fragment.selection_set, fragments, seen | {fragment_name})
            if inner is None:
                return None
            names |= inner
    return names


def etag_for(body: bytes) -> str:
    """A strong validator: the hash of the exact bytes sent."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match asks: `W/` prefixes do not matter."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == opaque for candidate in if_none_match.split(",")
    )
