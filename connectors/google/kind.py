"""Google Workspace and Google Calendar as a connection kind: its settings, credentials and connectors."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from pydantic import Field

from connectors.google.calendar import GoogleCalendar
from connectors.google.calendar_batch import GoogleBatch
from connectors.google.calendar_channels import GoogleCalendarChannels
from connectors.google.calendar_writer import GoogleCalendarWriter
from connectors.google.channels import GoogleChannels
from connectors.google.directory import GoogleDirectory
from connectors.google.person import GooglePerson
from connectors.google.service import GoogleSettings as GoogleConnection
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
    Texts,
    names_groups,
)


class GoogleSettings(KindSettings):
    admin_email: Text = Field(description="The admin the service account acts as.")
    customer: OptionalText = Field(default=None, description='The customer id (C0…); "my_customer" if left out.')
    groups: Texts = Field(default=None, description="Read only these groups' members (addresses).")
    calendars: Flag = Field(default=None, description="true: sync people's Google calendars too.")


def _key_file(text: str) -> dict[str, Any]:
    """A service account's JSON key file, checked; the messages name the fields, never what the file holds."""
    try:
        key = json.loads(text)
    except ValueError:
        raise ValueError("is not a JSON key file") from None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise ValueError("is not a service-account key (its type must be service_account)")
    missing = [field for field in ("client_email", "private_key", "token_uri") if not key.get(field)]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}; download a new JSON key for the service account")
    return key


class GoogleCredentials(KindCredentials):
    service_account_key: Annotated[
        dict[str, Any] | str | None, Cli(option="key-file", file="JSON", parse=_key_file)
    ] = Field(default=None, description="The service account's key file (its JSON).")


def google_settings(settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints) -> GoogleConnection:
    """How the connector reaches the connection's Workspace, acting as its admin."""
    key = credentials["service_account_key"]
    return GoogleConnection(
        service_account_info=json.loads(key) if isinstance(key, str) else key,
        admin_email=settings["admin_email"],
        customer=settings.get("customer") or "my_customer",
        base_url=endpoints.google_api_url,
        allow_private=endpoints.allow_private,
    )


def _reader(source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> GoogleCalendar:
    return GoogleCalendar(google_settings(source.settings, source.credentials, endpoints), source.address)


def _writer(source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> GoogleCalendarWriter:
    return GoogleCalendarWriter(google_settings(source.settings, source.credentials, endpoints), source.address)


def _calendar_subscriber(source: CalendarSource, endpoints: Endpoints) -> GoogleCalendarChannels:
    return GoogleCalendarChannels(google_settings(source.settings, source.credentials, endpoints), source.address)


KIND = Kind(
    name="google",
    title="Google Workspace",
    settings=GoogleSettings,
    credentials=GoogleCredentials,
    credential_sets=(frozenset({"service_account_key"}),),
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
    person_reader=lambda settings, credentials, endpoints: GooglePerson(
        google_settings(settings, credentials, endpoints),
        groups=names_groups(settings),
        scope_groups=(settings.get("scope") or {}).get("groups") or (),
    ),
    directory_reader=lambda settings, credentials, endpoints: GoogleDirectory(
        google_settings(settings, credentials, endpoints), groups=settings.get("groups") or None
    ),
    subscriber=lambda settings, credentials, endpoints: GoogleChannels(
        google_settings(settings, credentials, endpoints)
    ),
    calendar_reader=_reader,
    calendar_writer=_writer,
    calendar_subscriber=_calendar_subscriber,
    calendar_batch=lambda source, endpoints, http: GoogleBatch(
        google_settings(source.settings, source.credentials, endpoints)
    ),
)
