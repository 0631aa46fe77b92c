"""Checks on a JSON body made before anything parses it: nesting depth, NUL and lone surrogates.

Both are cheap on the bodies the API sees: the depth check counts brackets before doing any
work, and the text check parses only a body whose escapes could hide a NUL or a lone surrogate.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # far beyond any body the API documents; deep enough to be harmless to every parser

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# \u0000, or a \uD800-\uDFFF escape (half of a pair, or alone).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects more than `limit` levels deep.

    Text that is not JSON may pass: the parser refuses it afterwards, in the route's own words.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    # Each pass removes the innermost pairs, so `limit` passes empty any text no deeper than that.
    for _ in range(limit):
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if shorter == brackets:  # unbalanced: not JSON, for the parser to refuse
            return False
        brackets = shorter
    return bool(brackets) and brackets.replace(b"[]", b"").replace(b"{}", b"") != brackets


def bad_text(body: bytes) -> tuple[str, str] | None:
    """The first field (its path, such as `members[0].value`) whose name or text holds a NUL or a lone
    surrogate, and what is wrong with it; None when there is none (or the body is not JSON)."""
    if _SUSPECT_ESCAPE.search(body) is None:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return _find_bad_text(document)


def bad_text_in_pairs(pairs: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The first query (or form) parameter whose name or value holds a NUL, and what is wrong with it."""
    for name, value in pairs:
        problem = text_problem(name) or text_problem(value)
        if problem:
            return name, problem
    return None


def text_problem(text: str) -> str | None:
    """What makes `text` unstorable, or None: a NUL character, or a lone surrogate (not Unicode)."""
    if "\x00" in text:
        return "This field contains a NUL character (\\u0000), which is not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "This field contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode."
    return None


def _find_bad_text(document: Any) -> tuple[str, str] | None:
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return path or "body", problem
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                problem = text_problem(key)
                if problem:  # the name itself: point at the object holding it
                    return path or "body", "A field name: " + problem[0].lower() + problem[1:]
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))
    return None
