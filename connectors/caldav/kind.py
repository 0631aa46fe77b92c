"""CalDAV as a connection kind: one person's account, their calendars read and bookings written into them."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import BeforeValidator, Field, WithJsonSchema

from connectors.caldav.account import CalDavAccount
from connectors.caldav.reader import CalDavCalendar
from connectors.caldav.writer import CalDavCalendarWriter
from connectors.kind import (
    CalendarSource,
    Capability,
    Cli,
    Endpoints,
    Kind,
    KindCredentials,
    KindSettings,
    OptionalText,
    web_address,
)
from connectors.records import ConnectorError


class CalDavSettings(KindSettings):
    member_email: Annotated[OptionalText, Cli(option="member", parse=str.lower, required=True)] = Field(
        default=None, description="Whose calendars the account holds (a member's email)."
    )
    calendar: OptionalText = Field(
        default=None,
        description="One calendar's display name or URL; left out, every event calendar (the first is written into).",
    )


def _server(value: Any) -> str:
    return web_address(value, userinfo=False)  # the user and password are credentials of their own


class CalDavCredentials(KindCredentials):
    url: Annotated[
        str | None, BeforeValidator(_server), WithJsonSchema({"type": "string", "format": "uri"}), Cli(plain=True)
    ] = Field(default=None, description="The CalDAV server or principal URL (http or https).")
    username: Annotated[OptionalText, Cli(plain=True)] = Field(default=None, description="The account's user name.")
    password: OptionalText = Field(default=None, description="The account's (app) password.")


def account(source: CalendarSource, endpoints: Endpoints) -> CalDavAccount:
    """The account the connection's credentials name; ConnectorError (action required) when incomplete."""
    credentials = source.credentials
    if not all(isinstance(credentials.get(key), str) and credentials[key] for key in ("url", "username", "password")):
        raise ConnectorError(
            "the CalDAV connection lacks its url, username or password; enter them", action_required=True
        )
    return CalDavAccount(
        credentials["url"],
        credentials["username"],
        credentials["password"],
        calendar=source.settings.get("calendar"),
        allow_private=endpoints.allow_private,
    )


def _reader(source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> CalDavCalendar:
    return CalDavCalendar(account(source, endpoints), default_timezone=source.timezone)


def _writer(source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> CalDavCalendarWriter:
    return CalDavCalendarWriter(account(source, endpoints))


KIND = Kind(
    name="caldav",
    title="CalDAV calendar",
    settings=CalDavSettings,
    credentials=CalDavCredentials,
    credential_sets=(frozenset({"url", "username", "password"}),),
    capabilities=frozenset({Capability.READS_CALENDARS, Capability.WRITES_CALENDARS, Capability.ONE_CALENDAR}),
    calendar_reader=_reader,
    calendar_writer=_writer,
    default_name=lambda settings: f"Calendars of {settings.get('member_email')}",
)
