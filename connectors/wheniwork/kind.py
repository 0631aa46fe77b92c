"""When I Work as a connection kind: a peer platform whose shifts are office days."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from connectors.kind import Capability, Cli, Endpoints, Kind, KindCredentials, KindSettings, OptionalText
from connectors.wheniwork.client import DEFAULT_BASE_URL, WhenIWorkClient
from connectors.wheniwork.reader import WhenIWork

MAX_OFFICE_LOCATIONS = 500
_LOCATION_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


def _office_locations(value: Any) -> list[int | str] | None:
    """Locations whose shifts are office days: ids (whole numbers) or names, each once; null: every one."""
    if value is None:
        return None  # takes it away: every location counts again
    if not isinstance(value, list) or len(value) > MAX_OFFICE_LOCATIONS:
        raise ValueError(
            f"must be a list of at most {MAX_OFFICE_LOCATIONS} When I Work location ids or names "
            "(null or left out: every location)"
        )
    clean: list[int | str] = []
    for item in value:
        ok_id = isinstance(item, int) and not isinstance(item, bool) and item > 0
        ok_name = isinstance(item, str) and 0 < len(item.strip()) <= 200
        if not (ok_id or ok_name):
            raise ValueError(f": {item!r} is neither a location id (a whole number above 0) nor a location name")
        entry = item.strip() if isinstance(item, str) else item
        if entry not in clean:
            clean.append(entry)
    return clean


def _location(entry: str) -> int | str:
    """A location as typed: digits are its id, anything else its name."""
    text = entry.strip()
    return int(text) if text.isascii() and text.isdigit() else text


class WhenIWorkSettings(KindSettings):
    office_locations: Annotated[
        list[int | str] | None,
        BeforeValidator(_office_locations),
        Cli(parse=_location),
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "array",
                        "maxItems": MAX_OFFICE_LOCATIONS,
                        "items": {
                            "anyOf": [
                                {"type": "integer", "minimum": 1},
                                {"type": "string", "minLength": 1, "maxLength": 200},
                            ]
                        },
                    },
                    {"type": "null"},
                ]
            }
        ),
    ] = Field(
        default=None,
        description="Location ids or names whose shifts are office days; null or left out: every location.",
    )


class WhenIWorkCredentials(KindCredentials):
    developer_key: Annotated[OptionalText, Cli(option="key", env="WHENIWORK_KEY")] = Field(
        default=None, description="The developer key (W-Key)."
    )
    username: Annotated[OptionalText, Cli(plain=True)] = Field(
        default=None, description="The When I Work user the worker signs in as."
    )
    password: Annotated[OptionalText, Cli(env="WHENIWORK_PASSWORD")] = Field(
        default=None, description="The user's password."
    )


def _people(
    settings: dict[str, Any], credentials: dict[str, Any], endpoints: Endpoints, on_refresh: Callable[[Any], None]
) -> WhenIWork:
    client = WhenIWorkClient(
        credentials["developer_key"],
        credentials["username"],
        credentials["password"],
        base_url=endpoints.wheniwork_url or DEFAULT_BASE_URL,
    )
    # Absent: every location's shifts are office days.
    return WhenIWork(client, office_locations=settings.get("office_locations"))


KIND = Kind(
    name="wheniwork",
    title="When I Work",
    settings=WhenIWorkSettings,
    credentials=WhenIWorkCredentials,
    credential_sets=(frozenset({"developer_key", "username", "password"}),),
    capabilities=frozenset({Capability.PEER_PLATFORM}),
    people_reader=_people,
)
