"""Microsoft Entra ID and Outlook as a connection kind: its settings, credentials and connectors."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import Field

from connectors.kind import (
    CalendarSource,
    Capability,
    Cli,
    Endpoints,
    Flag,
    Kind,
    KindCredentials,
    KindSettings,
    OptionalText,
    Text,
    names_groups,
)
from connectors.microsoft.auth import ClientCertificate, ClientSecret, Credential, GraphAuth
from connectors.microsoft.calendar import OutlookCalendar
from connectors.microsoft.calendar_batch import OutlookBatch
from connectors.microsoft.calendar_push import OutlookEventSubscriptions
from connectors.microsoft.calendar_writer import OutlookCalendarWriter
from connectors.microsoft.directory import MicrosoftDirectory
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.person import MicrosoftPerson
from connectors.microsoft.subscriptions import MicrosoftSubscriptions


class MicrosoftSettings(KindSettings):
    tenant_id: Text = Field(description="The Entra tenant's id.")
    client_id: Text = Field(description="The app registration's client id.")
    calendars: Flag = Field(default=None, description="true: sync people's Outlook calendars too.")


def _pem(text: str) -> str:
    if "PRIVATE KEY-----" not in text:
        raise ValueError("holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
    return text


class MicrosoftCredentials(KindCredentials):
    client_secret: OptionalText = Field(
        default=None, description="The app's client secret (or a certificate: private_key with thumbprint)."
    )
    private_key: Annotated[OptionalText, Cli(option="certificate", file="PEM", parse=_pem)] = Field(
        default=None, description="The certificate's private key (PEM), with its thumbprint."
    )
    thumbprint: Annotated[OptionalText, Cli(plain=True)] = Field(
        default=None, description="The certificate's thumbprint (SHA-1, as Entra ID shows it)."
    )


def graph_client(settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints) -> GraphClient:
    """A Graph client for a connection, signing in with its client secret or certificate."""
    credential: Credential
    if credentials.get("client_secret"):
        credential = ClientSecret(credentials["client_secret"])
    else:
        credential = ClientCertificate(credentials["private_key"], credentials["thumbprint"])
    verify: str | bool = endpoints.ca_bundle or True
    auth = GraphAuth(
        settings["tenant_id"],
        settings["client_id"],
        credential,
        authority_host=endpoints.microsoft_authority,
        graph_url=endpoints.graph_url,
        verify=verify,
    )
    return GraphClient(auth, base_url=endpoints.graph_url, verify=verify)


def _reader(source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> OutlookCalendar:
    return OutlookCalendar(graph_client(source.settings, source.credentials, endpoints), source.address)


def _writer(source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> OutlookCalendarWriter:
    return OutlookCalendarWriter(graph_client(source.settings, source.credentials, endpoints), source.address)


def _calendar_subscriber(source: CalendarSource, endpoints: Endpoints) -> OutlookEventSubscriptions:
    return OutlookEventSubscriptions(graph_client(source.settings, source.credentials, endpoints), source.address)


KIND = Kind(
    name="microsoft",
    title="Microsoft Entra ID",
    settings=MicrosoftSettings,
    credentials=MicrosoftCredentials,
    credential_sets=(frozenset({"client_secret"}), frozenset({"private_key", "thumbprint"})),
    capabilities=frozenset(
        {
            Capability.READS_DIRECTORY,
            Capability.RECEIVES_PUSHES,
            Capability.READS_CALENDARS,
            Capability.WRITES_CALENDARS,
            Capability.READS_PERSON,
        }
    ),
    calendars_opt_in=True,
    person_reader=lambda settings, credentials, endpoints: MicrosoftPerson(
        graph_client(settings, credentials, endpoints), groups=names_groups(settings)
    ),
    directory_reader=lambda settings, credentials, endpoints: MicrosoftDirectory(
        graph_client(settings, credentials, endpoints)
    ),
    subscriber=lambda settings, credentials, endpoints: MicrosoftSubscriptions(
        graph_client(settings, credentials, endpoints)
    ),
    calendar_reader=_reader,
    calendar_writer=_writer,
    calendar_subscriber=_calendar_subscriber,
    calendar_batch=lambda source, endpoints, http: OutlookBatch(
        graph_client(source.settings, source.credentials, endpoints)
    ),
)
