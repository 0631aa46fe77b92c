"""The PeopleReader of a peer connection, built from its settings and credentials.

Resource Guru rotates its token pair on every refresh and the old access token stops working at
once, so the keeper hands each new pair to `on_refresh` (which stores it encrypted) before using it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from connectors import kadence, resourceguru, wheniwork
from connectors.records import ConnectorError, PeopleReader
from store.models import ConnectionKind
from worker.directory.readers import DirectoryEndpoints

SaveTokens = Callable[[resourceguru.TokenPair], None]


def make(
    kind: ConnectionKind,
    settings: dict[str, Any],
    credentials: dict[str, Any],
    endpoints: DirectoryEndpoints,
    *,
    on_refresh: SaveTokens,
) -> PeopleReader:
    """The reader of a connection of a peer `kind`; ConnectorError (action required) on missing credentials."""
    try:
        if kind is ConnectionKind.WHENIWORK:
            client = wheniwork.WhenIWorkClient(
                credentials["developer_key"],
                credentials["username"],
                credentials["password"],
                base_url=endpoints.wheniwork_url or wheniwork.DEFAULT_BASE_URL,
            )
            # Absent: every location's shifts are office days (validated in store/services/connections.py).
            return wheniwork.WhenIWork(client, office_locations=settings.get("office_locations"))
        if kind is ConnectionKind.KADENCE:
            return make_kadence(settings, credentials, endpoints)
        if kind is ConnectionKind.RESOURCEGURU:
            return make_resourceguru(settings, credentials, endpoints, on_refresh=on_refresh)
    except KeyError as missing:
        raise ConnectorError(f"the connection's credentials lack {missing}; enter them", action_required=True) from None
    raise ConnectorError(f"{kind.value} connections are not a peer platform")


def make_kadence(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints
) -> kadence.Kadence:
    """Kadence, in the connection's region (EU unless `region` is "us")."""
    us = settings.get("region") == "us"
    http = httpx.Client(timeout=30.0)  # one client for token and API requests: one TLS setting
    auth = kadence.KadenceAuth(
        credentials["client_id"],
        kadence.ClientSecret(credentials["client_secret"]),
        token_url=endpoints.kadence_token_url or (kadence.US_TOKEN_URL if us else kadence.EU_TOKEN_URL),
        http=http,
    )
    api_url = endpoints.kadence_api_url or (kadence.US_API_URL if us else kadence.EU_API_URL)
    return kadence.Kadence(kadence.KadenceClient(auth, api_url=api_url, http=http))


def make_resourceguru(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: DirectoryEndpoints, *, on_refresh: SaveTokens
) -> resourceguru.ResourceGuru:
    """Resource Guru for the connection's account, with its stored token pair."""
    base_url = endpoints.resourceguru_url or resourceguru.DEFAULT_BASE_URL
    app = resourceguru.OAuthApp(
        credentials["client_id"], credentials["client_secret"], str(credentials.get("redirect_uri") or "")
    )
    keeper = resourceguru.TokenKeeper(app, token_pair(credentials), on_refresh=on_refresh, base_url=base_url)
    return resourceguru.ResourceGuru(resourceguru.ResourceGuruClient(keeper, settings["account"], base_url=base_url))


def token_pair(credentials: dict[str, Any]) -> resourceguru.TokenPair:
    """The stored pair; a pair without an expiry is treated as expired, so it is refreshed before use."""
    raw = credentials.get("expires_at")
    try:
        expires = datetime.fromisoformat(raw) if isinstance(raw, str) else datetime.fromtimestamp(0).astimezone()
    except ValueError:
        raise ConnectorError(
            "the stored Resource Guru token expiry cannot be read; connect again", action_required=True
        ) from None
    if expires.tzinfo is None:
        raise ConnectorError("the stored Resource Guru token expiry has no zone; connect again", action_required=True)
    return resourceguru.TokenPair(credentials["access_token"], credentials["refresh_token"], expires)


def pair_credentials(pair: resourceguru.TokenPair) -> dict[str, str]:
    """What replaces the tokens in the connection's credentials after a refresh."""
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_at": pair.expires_at.isoformat(),
    }
