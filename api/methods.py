"""Which methods a path answers, read from the app's route table: the one source of `Allow`, of the
answer to OPTIONS, and of HEAD on every route that answers GET.

Starlette's router knows only the route it matched: a 405 on `DELETE /v1/desks` would name one of
the two routes at that path (`Allow: POST`), and FastAPI's routes answer neither HEAD nor OPTIONS.
The edge (api.middleware.Guard) asks this table instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

# Django REST framework's order, as WiggleDesk's `Allow` lists them.
_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Allowed:
    """The methods a path answers, and the route's own words about itself (for OPTIONS)."""

    methods: tuple[str, ...]
    native: frozenset[str]  # what the routes themselves answer, before HEAD and OPTIONS are added
    name: str
    description: str

    @property
    def header(self) -> str:
        """The `Allow` header's value."""
        return ", ".join(self.methods)

    def answers(self, method: str) -> bool:
        """Whether `method` is one of them."""
        return method in self.methods


class MethodTable:
    """The routes' paths and methods, compiled once; asked per path (cached: paths repeat)."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        # FastAPI keeps included routers as such; its route contexts are the routes as served (prefixed).
        self._routes: list[tuple[re.Pattern[str], frozenset[str], str, str]] = [
            (route.path_regex, frozenset(route.methods), *_words(route))
            for route in iter_route_contexts(routes)
            if route.methods and getattr(route, "path_regex", None) is not None
        ]
        self.allowed = lru_cache(maxsize=4096)(self._allowed)

    def _allowed(self, path: str) -> Allowed | None:
        """The methods answered at `path` (HEAD where GET is, OPTIONS everywhere), or None when no route has it."""
        methods: set[str] = set()
        name = description = ""
        for pattern, route_methods, route_name, route_description in self._routes:
            if pattern.match(path):
                methods |= route_methods
                name, description = name or route_name, description or route_description
        if not methods:
            return None
        native = frozenset(methods)
        if "GET" in methods:
            methods.add("HEAD")
        methods.add("OPTIONS")
        return Allowed(tuple(m for m in _ORDER if m in methods), native, name, description)


def _words(route: Any) -> tuple[str, str]:
    summary = getattr(route, "summary", None) or (route.name or "").replace("_", " ").capitalize()
    description = getattr(route, "description", None) or ""
    return summary, description.strip().split("\n\n", 1)[0]
