"""Kadence as a connection kind: a peer platform (people, desk bookings), in its EU or US region."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import httpx
from pydantic import BeforeValidator, Field, WithJsonSchema

from connectors.kadence.auth import EU_TOKEN_URL, US_TOKEN_URL, ClientSecret, KadenceAuth
from connectors.kadence.client import EU_API_URL, US_API_URL, KadenceClient
from connectors.kadence.reader import Kadence
from connectors.kind import (
    Capability,
    Cli,
    Endpoints,
    Flag,
    Kind,
    KindCredentials,
    KindSettings,
    OptionalText,
    non_empty,
)


def _region(value: Any) -> str:
    region = non_empty(value).lower()
    if region not in ("eu", "us"):
        raise ValueError("must be eu or us")
    return region


class KadenceSettings(KindSettings):
    region: Annotated[
        str | None,
        BeforeValidator(_region),
        WithJsonSchema({"type": "string", "pattern": "^([eE][uU]|[uU][sS])$"}),
        Cli(default="eu"),
    ] = Field(default=None, description="eu (left out) or us.")
    import_desks: Flag = Field(default=None, description="true: Kadence desks become desks.")


class KadenceCredentials(KindCredentials):
    client_id: Annotated[OptionalText, Cli(plain=True)] = Field(default=None, description="The API client's id.")
    client_secret: Annotated[OptionalText, Cli(env="KADENCE_CLIENT_SECRET")] = Field(
        default=None, description="The API client's secret."
    )


def make_kadence(settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints) -> Kadence:
    """Kadence, in the connection's region (EU unless `region` is "us")."""
    us = settings.get("region") == "us"
    http = httpx.Client(timeout=30.0)  # one client for token and API requests: one TLS setting
    auth = KadenceAuth(
        credentials["client_id"],
        ClientSecret(credentials["client_secret"]),
        token_url=endpoints.kadence_token_url or (US_TOKEN_URL if us else EU_TOKEN_URL),
        http=http,
    )
    api_url = endpoints.kadence_api_url or (US_API_URL if us else EU_API_URL)
    return Kadence(KadenceClient(auth, api_url=api_url, http=http))


def _people(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints, on_refresh: Callable[[Any], None]
) -> Kadence:
    return make_kadence(settings, credentials, endpoints)


KIND = Kind(
    name="kadence",
    title="Kadence",
    settings=KadenceSettings,
    credentials=KadenceCredentials,
    credential_sets=(frozenset({"client_id", "client_secret"}),),
    capabilities=frozenset({Capability.PEER_PLATFORM}),
    people_reader=_people,
)
