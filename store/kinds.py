"""What the store asks about connection kinds, answered by the registry it is handed at start.

The store imports nothing of ours, so the kind registry (`connectors.kinds.REGISTRY`) is installed
here by whoever composes the process (`worker/__init__.py`, which every process running store
services imports). Asking before then is a programming error, said plainly.
"""

from __future__ import annotations

from typing import Any, Protocol

from store.models.connection import ConnectionKind


class KindRules(Protocol):
    """The registry's answers the store needs (see connectors/kinds.py)."""

    def names(self) -> tuple[str, ...]:
        """Every kind's name."""
        ...

    def that(self, capability: str) -> frozenset[str]:
        """The kind names with `capability`."""
        ...

    def can(self, name: str, capability: str) -> bool: ...

    def reads_calendars(self, name: str, settings: dict[str, Any]) -> bool: ...

    def clean_settings(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Clean settings, or a ValueError with `message` and `field`."""
        ...

    def check_credentials(self, name: str, credentials: dict[str, Any]) -> None: ...


# The capability names the store asks about (connectors.kind.Capability's values).
READS_DIRECTORY = "reads_directory"
RECEIVES_PUSHES = "receives_pushes"
WRITES_CALENDARS = "writes_calendars"
ONE_CALENDAR = "one_calendar"
PEER_PLATFORM = "peer_platform"
_CAPABILITIES = (READS_DIRECTORY, RECEIVES_PUSHES, WRITES_CALENDARS, ONE_CALENDAR, PEER_PLATFORM)

_rules: KindRules | None = None


def install(rules: KindRules) -> None:
    """Hand the store the kind registry (once per process; again replaces it). The registry and
    `ConnectionKind` must name the same kinds, and it must know every capability the store asks
    about: a kind added to one and not the other fails here, at start, not at its first sync."""
    global _rules
    registered, stored = set(rules.names()), {kind.value for kind in ConnectionKind}
    if registered != stored:
        raise RuntimeError(f"the kind registry names {sorted(registered)} but ConnectionKind {sorted(stored)}")
    for capability in _CAPABILITIES:
        rules.that(capability)  # ValueError for a capability the registry does not know
    _rules = rules


def rules() -> KindRules:
    """The installed registry."""
    if _rules is None:
        raise RuntimeError("no kind registry installed: import worker (or call store.kinds.install) first")
    return _rules


def that(capability: str) -> tuple[ConnectionKind, ...]:
    """The kinds with `capability`, sorted (for SQL `IN`)."""
    return tuple(ConnectionKind(name) for name in sorted(rules().that(capability)))
