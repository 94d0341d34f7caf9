"""Selection sets built from the schema itself, for tests that must see every field of a type.

`Walker(schema_json)` takes the answer of `INTROSPECTION`. `walker.queries(head, type_name)`
returns GraphQL documents that together select every field of every type reachable from
`type_name`, each type at most `per_path` times along one path (so `Order.items.order.items`
is reached, and the walk ends). Every object selects `__typename`, so a checker can tell what
it is looking at. The tree is split into several documents when one would pass the server's
depth, token or cost limits: every field still appears in at least one of them, except the
deepest objects of a single path that alone costs more than the limit (listed in `trimmed`).
`walker.single(head, type_name)` gives one document (for a mutation, which runs once), trimmed
from the deepest objects up until it fits.

A field that takes a required argument cannot be selected blindly: the walker refuses it
(`RequiredArgument`), so whoever adds one must teach the test how to call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import Lexer, Source, TokenKind, parse

from joycart.schema import MAX_DEPTH, MAX_TOKENS, schema
from joycart.schema.cost import COST_LIMIT, operation_costs

INTROSPECTION = """{ __schema { types { name kind fields {
  name args { name defaultValue type { kind ofType { kind ofType { kind } } } }
  type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }"""

LEAF_KINDS = {"SCALAR", "ENUM"}
OBJECT_KINDS = {"OBJECT"}


class RequiredArgument(AssertionError):
    """A reachable field takes a required argument; the walker cannot invent a value for it."""


@dataclass
class Node:
    name: str
    type_name: str
    leaves: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def render(self) -> str:
        inner = " ".join(["__typename", *self.leaves, *(c.render() for c in self.children)])
        return f"{self.name} {{ {inner} }}"

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.children), default=0)

    def without_deepest(self) -> tuple[Node, str]:
        """A copy without its deepest object (and the dotted path of what went)."""
        if not self.children:
            raise AssertionError(f"{self.name}: nothing left to trim")
        deepest = max(self.children, key=lambda c: c.depth())
        rest = [c for c in self.children if c is not deepest]
        if not deepest.children:
            return Node(self.name, self.type_name, self.leaves, rest), deepest.name
        trimmed, path = deepest.without_deepest()
        kept = [trimmed if c is deepest else c for c in self.children]
        return Node(self.name, self.type_name, self.leaves, kept), f"{deepest.name}.{path}"


def _named(type_ref: dict[str, Any]) -> dict[str, Any]:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref


class Walker:
    def __init__(
        self,
        introspection: dict[str, Any],
        *,
        per_path: int = 2,
        max_depth: int = MAX_DEPTH - 1,
        limited: bool = True,
    ) -> None:
        """`limited=False` builds one document per root, for a schema without the server's
        depth, token and cost limits."""
        self.types = {t["name"]: t for t in introspection["__schema"]["types"]}
        self.per_path = per_path
        self.max_depth = max_depth
        self.limited = limited
        self.reached: set[str] = set()
        self.trimmed: list[str] = []

    def _fields(self, type_name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for f in self.types[type_name]["fields"] or []:
            if f["name"].startswith("__"):
                continue
            required = [
                a["name"]
                for a in f["args"]
                if a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None
            ]
            if required:
                raise RequiredArgument(
                    f"{type_name}.{f['name']} needs {required}: teach tests/schema_walk.py a value"
                )
            found.append(f)
        return found

    def tree(self, name: str, type_name: str, seen: dict[str, int], depth: int) -> Node:
        self.reached.add(type_name)
        node = Node(name, type_name)
        seen = {**seen, type_name: seen.get(type_name, 0) + 1}
        for f in self._fields(type_name):
            target = _named(f["type"])
            kind = self.types[target["name"]]["kind"]
            if kind in LEAF_KINDS:
                node.leaves.append(f["name"])
            elif kind in OBJECT_KINDS:
                # Within the depth bound, and each type at most `per_path` times on a path.
                if depth < self.max_depth and seen.get(target["name"], 0) < self.per_path:
                    node.children.append(self.tree(f["name"], target["name"], seen, depth + 1))
            else:
                raise AssertionError(f"{type_name}.{f['name']}: teach the walker kind {kind}")
        return node

    def queries(self, head: str, type_name: str, *, operation: str = "query") -> list[str]:
        """Documents `operation { head { ...every field... } }`, each within the server limits."""
        return self._pack(self.tree(head, type_name, {}, 1), [], operation)

    def _pack(self, node: Node, ancestors: list[Node], operation: str) -> list[str]:
        """As few documents as fit: `node`'s children packed greedily into groups (each with
        all of node's leaves), a child too big alone packed in turn, one level down."""
        whole = _document(ancestors, node, operation)
        if not self.limited or _fits(whole):
            return [whole]
        if not node.children:  # this path alone costs too much: it ends one level sooner
            self.trimmed.append(".".join(a.name for a in [*ancestors[1:], node]))
            return []
        bare = Node(node.name, node.type_name, node.leaves, [])
        done: list[str] = []
        group: list[Node] = []
        for child in node.children:
            if _fits(
                _document(
                    ancestors,
                    Node(node.name, node.type_name, node.leaves, [*group, child]),
                    operation,
                )
            ):
                group.append(child)
                continue
            if group:
                done.append(
                    _document(
                        ancestors, Node(node.name, node.type_name, node.leaves, group), operation
                    )
                )
            group = []
            if _fits(
                _document(
                    ancestors, Node(node.name, node.type_name, node.leaves, [child]), operation
                )
            ):
                group = [child]
            else:
                done.extend(self._pack(child, [*ancestors, bare], operation))
        if group or not done:
            done.append(
                _document(ancestors, Node(node.name, node.type_name, node.leaves, group), operation)
            )
        return done

    def single(self, head: str, type_name: str, *, operation: str = "mutation") -> str:
        """One document selecting as much as fits, the deepest objects trimmed first."""
        node = self.tree(head, type_name, {}, 1)
        while self.limited and not _fits(f"{operation} {{ {node.render()} }}"):
            node, path = node.without_deepest()
            self.trimmed.append(path)
        return f"{operation} {{ {node.render()} }}"


def _document(ancestors: list[Node], node: Node, operation: str) -> str:
    for above in reversed(ancestors):
        node = Node(above.name, above.type_name, above.leaves, [node])
    return f"{operation} {{ {node.render()} }}"


def _fits(document: str) -> bool:
    lexer = Lexer(Source(document))
    tokens = 0
    while lexer.advance().kind is not TokenKind.EOF:
        tokens += 1
    if tokens > MAX_TOKENS * 0.9:
        return False
    costs = operation_costs(schema._schema, parse(document))
    return max(costs.values()) <= COST_LIMIT


def objects(data: Any) -> list[dict[str, Any]]:
    """Every object in an answer that carries `__typename`, at any depth."""
    found: list[dict[str, Any]] = []
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if "__typename" in value:
                found.append(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def strings(data: Any) -> set[str]:
    """Every string value in an answer."""
    found: set[str] = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            found.add(value)
    return found
