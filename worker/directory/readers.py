"""Which connector reads which kind of connection, built from its settings and credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.push import PushSubscriber
from connectors.records import ConnectorError, DirectoryReader
from store.models import ConnectionKind


@dataclass(frozen=True)
class DirectoryEndpoints:
    """Where the outside directories live: the real services, or fakes in the tests."""

    microsoft_authority: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    google_api_url: str = "https://admin.googleapis.com/"
    ca_bundle: str | None = None  # extra CA certificates to trust (a test CA); None: the system's


def make(
    kind: ConnectionKind, settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints
) -> DirectoryReader:
    """The connector that reads a connection of `kind`."""
    raise ConnectorError(f"{kind.value} connections cannot be read yet")


def make_subscriber(
    kind: ConnectionKind, settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints
) -> PushSubscriber:
    """The connector that opens push channels for a connection of `kind`."""
    raise ConnectorError(f"{kind.value} connections cannot push yet")
