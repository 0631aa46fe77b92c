"""Graph's `dateTimeTimeZone` values: wall-clock times with a zone name, Windows or IANA, read as aware UTC.

Graph writes an event's times as `{"dateTime": "2017-04-15T11:00:00.0000000", "timeZone": "Pacific
Standard Time"}`: the zone is the one asked for with `Prefer: outlook.timezone` (UTC without it),
and `originalStartTimeZone` names the zone the organiser used. Exchange names zones the Windows way;
the Windows → IANA table is the Unicode CLDR one icalendar ships (`windowsZones.xml`), so we keep no
table of our own. Exchange also writes `tzone://Microsoft/Utc` and `tzone://Microsoft/Custom` (a
zone defined inline by the client, which Graph does not give us: unknown).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.records import ConnectorError

_UTC_NAMES = frozenset({"utc", "tzone://microsoft/utc", "etc/utc", "etc/gmt", "gmt", "z"})


@lru_cache(maxsize=512)
def zone_named(name: str | None) -> ZoneInfo | None:
    """The zone a Graph zone name stands for (Windows or IANA), or None when unknown."""
    if not name:
        return None
    key = name.strip()
    if key.lower() in _UTC_NAMES:
        return ZoneInfo("UTC")
    key = WINDOWS_TO_OLSON.get(key, key)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not even a valid key ("../x")
        return None


def iana_name(name: str | None) -> str | None:
    """The IANA name for a Graph zone name ("Pacific Standard Time" → "America/Los_Angeles"), or None."""
    zone = zone_named(name)
    return None if zone is None else zone.key


def wall_clock(text: str) -> datetime:
    """A naive datetime from Graph's `dateTime` (7 fractional digits: Python keeps 6)."""
    try:
        # Python 3.11 reads Graph's form as it is (extra digits dropped): the common case, done in C.
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        pass
    head, dot, rest = text.strip().partition(".")
    value = f"{head}.{rest[:6].ljust(6, '0')}" if dot else head
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConnectorError(f"Graph sent an unreadable event time: {text!r}") from None
    return parsed.replace(tzinfo=None)  # a dateTimeTimeZone never carries an offset; ignore one if it did


def read_time(value: Any, *, fallback: tzinfo = UTC) -> datetime:
    """An aware UTC datetime from a `dateTimeTimeZone` object; a zone we cannot name falls back to `fallback`.

    `fold=0` picks the first of two wall-clock times a DST fall-back repeats, as Exchange does.
    """
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ConnectorError(f"Graph sent an event time that is not a dateTimeTimeZone: {value!r}")
    name = value.get("timeZone")
    if name == "UTC":  # what the readers ask for (`Prefer: outlook.timezone="UTC"`): nothing to convert
        return wall_clock(value["dateTime"]).replace(tzinfo=UTC)
    zone = zone_named(name) or fallback
    return wall_clock(value["dateTime"]).replace(tzinfo=zone).astimezone(UTC)


def read_day(value: Any) -> date:
    """The calendar day of an all-day event's start or end (Graph writes midnight in whatever zone was asked)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ConnectorError(f"Graph sent an event time that is not a dateTimeTimeZone: {value!r}")
    return wall_clock(value["dateTime"]).date()


def midnight(day: date, zone: tzinfo) -> datetime:
    """The start of `day` in `zone`, in UTC."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def write_time(moment: datetime, zone_name: str) -> dict[str, str]:
    """A `dateTimeTimeZone` for `moment` (aware) as wall-clock time in the IANA zone `zone_name`.

    Graph accepts IANA names besides Windows ones; the zone is what Outlook shows the person.
    """
    if moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    zone = zone_named(zone_name)
    if zone is None:
        raise ValueError(f"unknown time zone {zone_name!r}")
    return {"dateTime": moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone_name}
