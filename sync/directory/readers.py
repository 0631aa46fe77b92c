"""Which connector reads which kind of connection: the kind's descriptor (connectors/kinds.py) builds it."""

from __future__ import annotations

from typing import Any

from connectors.google.kind import google_settings as google_settings
from connectors.kind import Endpoints
from connectors.kinds import REGISTRY
from connectors.microsoft.kind import graph_client as graph_client
from connectors.push import PushSubscriber
from connectors.records import ConnectorError, DirectoryReader

DirectoryEndpoints = Endpoints  # the name the wiring and tests know it by


def make(kind: str, settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints) -> DirectoryReader:
    """The connector that reads a connection of `kind`."""
    factory = REGISTRY.get(kind).directory_reader
    if factory is None:
        raise ConnectorError(f"{kind} connections are pushed to deskbridge, not read")
    return factory(settings, credentials, endpoints)


def make_subscriber(
    kind: str, settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints
) -> PushSubscriber:
    """The connector that opens push channels for a connection of `kind`."""
    factory = REGISTRY.get(kind).subscriber
    if factory is None:
        raise ConnectorError(f"{kind} connections have no push channels")
    return factory(settings, credentials, endpoints)
