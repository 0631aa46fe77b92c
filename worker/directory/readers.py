"""Which connector reads which kind of connection, built from its settings and credentials."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connectors import google, microsoft
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
    # Peer platforms (worker/peers); None: the real service (Kadence: of the connection's region).
    wheniwork_url: str | None = None
    kadence_api_url: str | None = None
    kadence_token_url: str | None = None
    resourceguru_url: str | None = None
    # Whether URLs that come from input (a Google key's token_uri) may reach private addresses: the
    # deployment's setting (the embedded mode, tests with loopback fakes). Refused unless said.
    allow_private: bool = False


def make(
    kind: ConnectionKind, settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints
) -> DirectoryReader:
    """The connector that reads a connection of `kind`."""
    if kind is ConnectionKind.MICROSOFT:
        return microsoft.MicrosoftDirectory(graph_client(settings, credentials, endpoints))
    if kind is ConnectionKind.GOOGLE:
        return google.GoogleDirectory(
            google_settings(settings, credentials, endpoints), groups=settings.get("groups") or None
        )
    raise ConnectorError(f"{kind.value} connections are pushed to deskbridge, not read")


def make_subscriber(
    kind: ConnectionKind, settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints
) -> PushSubscriber:
    """The connector that opens push channels for a connection of `kind`."""
    if kind is ConnectionKind.MICROSOFT:
        return microsoft.MicrosoftSubscriptions(graph_client(settings, credentials, endpoints))
    if kind is ConnectionKind.GOOGLE:
        return google.GoogleChannels(google_settings(settings, credentials, endpoints))
    raise ConnectorError(f"{kind.value} connections have no push channels")


def graph_client(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints
) -> microsoft.GraphClient:
    """A Graph client for a connection, signing in with its client secret or certificate."""
    credential: microsoft.Credential
    if credentials.get("client_secret"):
        credential = microsoft.ClientSecret(credentials["client_secret"])
    else:
        credential = microsoft.ClientCertificate(credentials["private_key"], credentials["thumbprint"])
    verify: str | bool = endpoints.ca_bundle or True
    auth = microsoft.GraphAuth(
        settings["tenant_id"],
        settings["client_id"],
        credential,
        authority_host=endpoints.microsoft_authority,
        graph_url=endpoints.graph_url,
        verify=verify,
    )
    return microsoft.GraphClient(auth, base_url=endpoints.graph_url, verify=verify)


def google_settings(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints
) -> google.GoogleSettings:
    key = credentials["service_account_key"]
    return google.GoogleSettings(
        service_account_info=json.loads(key) if isinstance(key, str) else key,
        admin_email=settings["admin_email"],
        customer=settings.get("customer") or "my_customer",
        base_url=endpoints.google_api_url,
        allow_private=endpoints.allow_private,
    )
