"""Selection sets built from the schema itself, for tests that must see every field of a type.

`Walker(schema_json)` takes the answer of `INTROSPECTION`. `walker.queries(head, type_name)`
returns GraphQL documents that together select every field of every type reachable from
`type_name`, each type at most `per_path` times along one path (so `Order.items.order.items`
is reached, and the walk ends). Every object selects `__typename`, so a checker can tell what
it is looking at. The tree is split into several documents when one would pass the server's
depth, token or cost limits: every field still appears in at least one of them.

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

    def split(self) -> list[Node]:
        """Smaller selections that together select everything this one does: one child at a
        time (every one with all the leaves), or the only child split in turn."""
        if len(self.children) > 1:
            return [Node(self.name, self.type_name, self.leaves, [c]) for c in self.children]
        if self.children:
            return [
                Node(self.name, self.type_name, self.leaves, [part])
                for part in self.children[0].split()
            ]
        return [self]


def _named(type_ref: dict[str, Any]) -> dict[str, Any]:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref


class Walker:
    def __init__(self, introspection: dict[str, Any], *, per_path: int = 2) -> None:
        self.types = {t["name"]: t for t in introspection["__schema"]["types"]}
        self.per_path = per_path
        self.reached: set[str] = set()

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
                # Below the depth limit, and each type at most `per_path` times on a path.
                if depth + 2 <= MAX_DEPTH and seen.get(target["name"], 0) < self.per_path:
                    node.children.append(self.tree(f["name"], target["name"], seen, depth + 1))
            else:
                raise AssertionError(f"{type_name}.{f['name']}: teach the walker kind {kind}")
        return node

    def queries(self, head: str, type_name: str, *, operation: str = "query") -> list[str]:
        """Documents `operation { head { ...every field... } }`, each within the server limits."""
        root = self.tree(head, type_name, {}, 1)
        pending = [root]
        done: list[str] = []
        while pending:
            node = pending.pop()
            document = f"{operation} {{ {node.render()} }}"
            if _fits(document):
                done.append(document)
                continue
            parts = node.split()
            assert parts != [node], f"{head}: one path alone is over the limits: {document}"
            pending.extend(parts)
        return done


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
