"""SCIM filter expressions (RFC 7644 §3.4.2.2): parsed into a small tree, evaluated on documents.

The whole grammar is parsed (so a filter we cannot answer is told apart from one that is wrong);
what a listing can answer is the API's business (api/scim/queries.py). PATCH paths use the same
parser for their `[...]` value filters, evaluated here on a multi-valued attribute's items.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from connectors.scim.errors import ScimError

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"})
_TOKEN = re.compile(r'\s*(?:(?P<punct>[()\[\]])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]"]+))')


def invalid_filter(detail: str) -> ScimError:
    """400 invalidFilter (RFC 7644 §3.12)."""
    return ScimError(400, detail, "invalidFilter")


@dataclass(frozen=True, slots=True)
class AttrPath:
    """`[urn:]attr[.sub]`; `urn` is the schema URN written in front, if any."""

    attr: str
    sub: str | None = None
    urn: str | None = None

    @classmethod
    def parse(cls, text: str) -> AttrPath:
        """Split `urn:...:User:name.givenName` into its URN, attribute and sub-attribute."""
        urn = None
        if text.lower().startswith("urn:"):
            urn, _, text = text.rpartition(":")
        attr, _, sub = text.partition(".")
        if not re.fullmatch(r"\$?[A-Za-z][\w$-]*", attr) or (sub and not re.fullmatch(r"\$?[A-Za-z][\w$-]*", sub)):
            raise invalid_filter(f"{text!r} is not an attribute path")
        return cls(attr, sub or None, urn)

    def __str__(self) -> str:
        text = f"{self.attr}.{self.sub}" if self.sub else self.attr
        return f"{self.urn}:{text}" if self.urn else text


@dataclass(frozen=True, slots=True)
class Compare:
    path: AttrPath
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Present:
    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Not:
    inner: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """`attr[filter]`: some item of a multi-valued attribute matches the inner filter."""

    path: AttrPath
    inner: Filter


Filter = Compare | Present | And | Or | Not | ValuePath


def parse(text: str) -> Filter:
    """The filter's tree, or 400 invalidFilter saying where it went wrong."""
    parser = _Parser(_tokens(text))
    node = parser.expression()
    if parser.peek() is not None:
        raise invalid_filter(f"unexpected {parser.peek()!r} in the filter")
    return node


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid_filter(f"cannot read the filter from {text[position:]!r}")
        tokens.append(match.group(match.lastgroup or "word"))
        position = match.end()
    if not tokens:
        raise invalid_filter("the filter is empty")
    return tokens


class _Parser:
    """Recursive descent with RFC 7644's precedence: `not`, then `and`, then `or`."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise invalid_filter("the filter ends too early")
        self.position += 1
        return token

    def expect(self, wanted: str) -> None:
        token = self.take()
        if token != wanted:
            raise invalid_filter(f"expected {wanted!r} in the filter, found {token!r}")

    def expression(self) -> Filter:
        node = self.conjunction()
        while (self.peek() or "").lower() == "or":
            self.take()
            node = Or(node, self.conjunction())
        return node

    def conjunction(self) -> Filter:
        node = self.factor()
        while (self.peek() or "").lower() == "and":
            self.take()
            node = And(node, self.factor())
        return node

    def factor(self) -> Filter:
        part = self.take()
        if part == "(":
            node = self.expression()
            self.expect(")")
            return node
        if part.lower() == "not":
            self.expect("(")
            node = self.expression()
            self.expect(")")
            return Not(node)
        if part in ("(", ")", "[", "]") or part.startswith('"'):
            raise invalid_filter(f"expected an attribute in the filter, found {part!r}")
        path = AttrPath.parse(part)
        if self.peek() == "[":
            self.take()
            inner = self.expression()
            self.expect("]")
            return ValuePath(path, inner)
        op = self.take().lower()
        if op == "pr":
            return Present(path)
        if op not in COMPARE_OPS:
            raise invalid_filter(f"{op!r} is not a SCIM comparison operator")
        return Compare(path, op, _value(self.take()))


def _value(token: str) -> Any:
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return json.loads(token)  # a "string" or a number
    except ValueError:
        raise invalid_filter(f"{token!r} is not a filter value (strings are quoted)") from None


def matches(node: Filter, item: dict[str, Any]) -> bool:
    """Whether a complex value (an `emails` or `members` item) matches a value filter.

    Attribute names and string comparisons ignore case, as RFC 7643 makes them by default.
    """
    if isinstance(node, And):
        return matches(node.left, item) and matches(node.right, item)
    if isinstance(node, Or):
        return matches(node.left, item) or matches(node.right, item)
    if isinstance(node, Not):
        return not matches(node.inner, item)
    if isinstance(node, ValuePath):
        raise invalid_filter("value filters cannot be nested")
    value = _lookup(item, node.path)
    if isinstance(node, Present):
        return value not in (None, "", [], {})
    return _compare(value, node.op, node.value)


def _lookup(item: dict[str, Any], path: AttrPath) -> Any:
    value = _get(item, path.attr)
    if path.sub is not None:
        value = _get(value, path.sub) if isinstance(value, dict) else None
    return value


def _get(item: dict[str, Any], name: str) -> Any:
    lowered = name.lower()
    return next((value for key, value in item.items() if key.lower() == lowered), None)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if not isinstance(actual, str | int | float) or not isinstance(expected, str | int | float):
        return False
    if isinstance(actual, str) != isinstance(expected, str):
        return False
    if op in ("co", "sw", "ew"):
        if not isinstance(actual, str) or not isinstance(expected, str):
            return False
        return {"co": expected in actual, "sw": actual.startswith(expected), "ew": actual.endswith(expected)}[op]
    ordered: dict[str, bool] = {
        "gt": actual > expected,  # type: ignore[operator]
        "lt": actual < expected,  # type: ignore[operator]
        "ge": actual >= expected,  # type: ignore[operator]
        "le": actual <= expected,  # type: ignore[operator]
    }
    return ordered[op]


def equalities(node: Filter) -> dict[str, Any] | None:
    """The `attr eq value` terms of a filter made only of them joined by `and`, else None.

    What an item created for `emails[type eq "work"].value` should hold.
    """
    if isinstance(node, Compare) and node.op == "eq" and node.path.sub is None:
        return {node.path.attr: node.value}
    if isinstance(node, And):
        left, right = equalities(node.left), equalities(node.right)
        if left is not None and right is not None:
            return {**left, **right}
    return None
