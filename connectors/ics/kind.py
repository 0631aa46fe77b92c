"""An ICS feed as a connection kind: one calendar (a person's, or an organisation resource's), read only."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import BeforeValidator, Field, WithJsonSchema

from connectors.ics.feed import IcsFeed
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


class IcsSettings(KindSettings):
    member_email: Annotated[OptionalText, Cli(option="member", parse=str.lower)] = Field(
        default=None, description="Whose calendar the feed is (a member's email); left out, an organisation resource's."
    )


def _feed(value: Any) -> str:
    return web_address(value, webcal=True)


class IcsCredentials(KindCredentials):
    url: Annotated[
        str | None, BeforeValidator(_feed), WithJsonSchema({"type": "string", "minLength": 1}), Cli(either=True)
    ] = Field(
        default=None, description="The feed's address (http, https or webcal); shown only as its scheme and host."
    )


def _reader(source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> IcsFeed:
    url = source.credentials.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConnectorError("the ICS connection has no feed address; enter one", action_required=True)
    return IcsFeed(url, http=http, default_timezone=source.timezone)


KIND = Kind(
    name="ics",
    title="calendar feed",
    settings=IcsSettings,
    credentials=IcsCredentials,
    credential_sets=(frozenset({"url"}),),  # feed URLs often carry a secret token: kept encrypted
    capabilities=frozenset({Capability.READS_CALENDARS, Capability.ONE_CALENDAR}),
    calendar_reader=_reader,
    shown_address="url",
    default_name=lambda settings: (
        f"Calendar of {settings['member_email']}" if settings.get("member_email") else "ICS feed"
    ),
)
