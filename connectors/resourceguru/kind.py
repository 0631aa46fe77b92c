"""Resource Guru as a connection kind: a peer platform, with signed webhooks and a rotating token pair.

Resource Guru rotates its token pair on every refresh and the old access token stops working at
once, so the keeper hands each new pair to `on_refresh` (which stores it encrypted) before using it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import Field

from connectors.kind import Capability, Endpoints, Kind, KindCredentials, KindSettings, OptionalText, Text
from connectors.records import ConnectorError
from connectors.resourceguru.auth import DEFAULT_BASE_URL, OAuthApp, TokenKeeper, TokenPair
from connectors.resourceguru.client import ResourceGuruClient
from connectors.resourceguru.reader import ResourceGuru

SaveTokens = Callable[[TokenPair], None]


class ResourceGuruSettings(KindSettings):
    account: Text = Field(description="The account's URL id.")


class ResourceGuruCredentials(KindCredentials):
    client_id: OptionalText = None
    client_secret: OptionalText = None
    access_token: OptionalText = None
    refresh_token: OptionalText = None
    expires_at: OptionalText = Field(default=None, description="When the access token expires (ISO 8601).")
    webhook_secret: OptionalText = Field(default=None, description="Verifies /hooks/resourceguru/{id}.")


def make_resourceguru(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints, *, on_refresh: SaveTokens
) -> ResourceGuru:
    """Resource Guru for the connection's account, with its stored token pair."""
    base_url = endpoints.resourceguru_url or DEFAULT_BASE_URL
    app = OAuthApp(credentials["client_id"], credentials["client_secret"], str(credentials.get("redirect_uri") or ""))
    keeper = TokenKeeper(app, token_pair(credentials), on_refresh=on_refresh, base_url=base_url)
    return ResourceGuru(ResourceGuruClient(keeper, settings["account"], base_url=base_url))


def token_pair(credentials: dict[str, Any]) -> TokenPair:
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
    return TokenPair(credentials["access_token"], credentials["refresh_token"], expires)


def pair_credentials(pair: TokenPair) -> dict[str, str]:
    """What replaces the tokens in the connection's credentials after a refresh."""
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_at": pair.expires_at.isoformat(),
    }


def _people(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints, on_refresh: SaveTokens
) -> ResourceGuru:
    return make_resourceguru(settings, credentials, endpoints, on_refresh=on_refresh)


KIND = Kind(
    name="resourceguru",
    title="Resource Guru",
    settings=ResourceGuruSettings,
    credentials=ResourceGuruCredentials,
    # The app's credentials and the pair the authorisation code was exchanged for; `webhook_secret`
    # (optional) verifies inbound webhooks. Refreshed pairs replace the tokens (see worker/peers).
    credential_sets=(frozenset({"client_id", "client_secret", "access_token", "refresh_token"}),),
    capabilities=frozenset({Capability.PEER_PLATFORM}),
    people_reader=_people,
)
