"""The PeopleReader of a peer connection, built by its kind's descriptor (connectors/<kind>/kind.py)."""

from __future__ import annotations

from typing import Any

from connectors.kadence.kind import make_kadence as make_kadence
from connectors.kinds import REGISTRY
from connectors.records import ConnectorError, PeopleReader
from connectors.resourceguru.kind import SaveTokens as SaveTokens
from connectors.resourceguru.kind import make_resourceguru as make_resourceguru
from connectors.resourceguru.kind import pair_credentials as pair_credentials
from connectors.resourceguru.kind import token_pair as token_pair
from sync.directory.readers import DirectoryEndpoints


def make(
    kind: str,
    settings: dict[str, Any],
    credentials: dict[str, Any],
    endpoints: DirectoryEndpoints,
    *,
    on_refresh: SaveTokens,
) -> PeopleReader:
    """The reader of a connection of a peer `kind`; ConnectorError (action required) on missing credentials."""
    factory = REGISTRY.get(kind).people_reader
    if factory is None:
        raise ConnectorError(f"{kind} connections are not a peer platform")
    try:
        return factory(settings, credentials, endpoints, on_refresh)
    except KeyError as missing:
        raise ConnectorError(f"the connection's credentials lack {missing}; enter them", action_required=True) from None
