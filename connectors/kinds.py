"""The registry of connection kinds: every kind's descriptor (`connectors/<kind>/kind.py`), by name.

Ask it "which kinds can…" (`that`), for a kind's descriptor (`get`), and to clean a kind's settings
and check its credentials. The store is handed this registry at start (`store.kinds.install`), since
the store imports nothing of ours; the API and CLI take their schemas and help from it.
"""

from __future__ import annotations

from typing import Any

from connectors.caldav.kind import KIND as CALDAV
from connectors.csv.kind import KIND as CSV
from connectors.google.kind import KIND as GOOGLE
from connectors.ics.kind import KIND as ICS
from connectors.kadence.kind import KIND as KADENCE
from connectors.kind import Capability, Kind, KindInvalid
from connectors.microsoft.kind import KIND as MICROSOFT
from connectors.resourceguru.kind import KIND as RESOURCEGURU
from connectors.scim.kind import KIND as SCIM
from connectors.wheniwork.kind import KIND as WHENIWORK

KINDS: dict[str, Kind] = {
    kind.name: kind for kind in (MICROSOFT, GOOGLE, SCIM, CSV, ICS, WHENIWORK, KADENCE, RESOURCEGURU, CALDAV)
}


class Registry:
    """The kinds deskbridge knows, and the answers the rest of it asks of them."""

    def __init__(self, kinds: dict[str, Kind]) -> None:
        self._kinds = kinds

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def get(self, name: str) -> Kind:
        """The kind's descriptor; KindInvalid for a name no kind has."""
        kind = self._kinds.get(str(name))
        if kind is None:
            raise KindInvalid(f"kind must be one of {', '.join(self._kinds)}", field="kind")
        return kind

    def that(self, capability: Capability | str) -> frozenset[str]:
        """The names of the kinds that have `capability`."""
        return frozenset(name for name, kind in self._kinds.items() if Capability(capability) in kind.capabilities)

    def can(self, name: str, capability: Capability | str) -> bool:
        return Capability(capability) in self.get(name).capabilities

    def reads_calendars(self, name: str, settings: dict[str, Any]) -> bool:
        return self.get(name).reads_calendars(settings)

    def clean_settings(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        return self.get(name).clean_settings(settings)

    def check_credentials(self, name: str, credentials: dict[str, Any]) -> None:
        self.get(name).check_credentials(credentials)


REGISTRY = Registry(KINDS)
