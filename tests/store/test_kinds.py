"""The store is handed the kind registry at start, and refuses one that does not match its kinds."""

from __future__ import annotations

import pytest

from connectors.kinds import REGISTRY, Registry
from store import kinds


def test_a_registry_missing_a_stored_kind_is_refused_at_install() -> None:
    partial = Registry({name: REGISTRY.get(name) for name in REGISTRY.names() if name != "caldav"})
    with pytest.raises(RuntimeError, match="caldav"):
        kinds.install(partial)
    assert kinds.rules() is REGISTRY  # the one installed stays


def test_the_real_registry_installs() -> None:
    kinds.install(REGISTRY)
    assert kinds.rules() is REGISTRY
