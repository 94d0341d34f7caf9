"""Selection sets built from the schema itself, for tests that must see every field of a type.

`Walker(schema_json)` takes the answer of `INTROSPECTION`. `walker.document(head, type_name)`
is one GraphQL document that selects every field of every type reachable from `type_name`,
each type at most `per_path` times along one path (so `Order.items.order.items` is reached,
and the walk ends). Every object selects `__typename`, so a checker can tell what it is
looking at. Such documents are far beyond the server's depth, token and cost limits: run them
on a schema without those limits (see tests/api/test_privacy.py).

A field that takes a required argument cannot be selected blindly: the walker refuses it
(`RequiredArgument`), so whoever adds one must teach the test how to call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    leaves: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def render(self) -> str:
        inner = " ".join(["__typename", *self.leaves, *(c.render() for c in self.children)])
        return f"{self.name} {{ {inner} }}"


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

    def _tree(self, name: str, type_name: str, seen: dict[str, int]) -> Node:
        self.reached.add(type_name)
        node = Node(name)
        seen = {**seen, type_name: seen.get(type_name, 0) + 1}
        for f in self._fields(type_name):
            target = _named(f["type"])["name"]
            kind = self.types[target]["kind"]
            if kind in LEAF_KINDS:
                node.leaves.append(f["name"])
            elif kind in OBJECT_KINDS:
                if seen.get(target, 0) < self.per_path:  # each type at most per_path times
                    node.children.append(self._tree(f["name"], target, seen))
            else:
                raise AssertionError(f"{type_name}.{f['name']}: teach the walker kind {kind}")
        return node

    def document(self, head: str, type_name: str, *, operation: str = "query") -> str:
        """`operation { head { ...every field, to the bound... } }`."""
        return f"{operation} {{ {self._tree(head, type_name, {}).render()} }}"


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
