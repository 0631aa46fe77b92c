"""Time-zone names as calendars write them in a TZID, to IANA zones.

Three kinds of name reach us:
- IANA names (`Europe/Berlin`), looked up in the tz database (zoneinfo, with the `tzdata` package);
- Windows zone ids (`W. Europe Standard Time`), which Exchange and Outlook write: CLDR's windowsZones
  mapping as icalendar ships it (`icalendar.timezone.windows_to_olson`, regenerated from CLDR);
- Windows display names (`(UTC-05:00) Eastern Time (US & Canada)`, `(GMT+10:00) Canberra, Melbourne,
  Sydney`), which Exchange 2010 and Outlook Web App write with no VTIMEZONE. No maintained table maps
  those (they are Windows' localised registry strings), so they are read by rule: the `(UTC±hh:mm)`
  prefix gives the offset; the rest is tried as a Windows id (`Eastern Time` → `Eastern Standard
  Time`, as Windows names its zones), then place by place (`Canberra`, `Melbourne`, …) against the
  cities of the tz database's zone names; a zone is taken only when its offset (standard or summer)
  is the prefix's, so a city that happens to share a name elsewhere is not taken by mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_DISPLAY = re.compile(
    r"\(\s*(?:UTC|GMT)\s*(?:(?P<sign>[+\-\u2212])\s*(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?)?\s*\)\s*(?P<rest>.*)",
    re.IGNORECASE,
)
_PLACE_SEPARATORS = re.compile(r"\s*(?:[,;:/()&]|\band\b)\s*", re.IGNORECASE)
_WINDOWS_ANY_CASE = {windows.lower(): iana for windows, iana in WINDOWS_TO_OLSON.items()}
_GRAPH_PREFIX = "tzone://microsoft/"
_UNIVERSAL = frozenset({"coordinated universal time", "utc", "universal time", "greenwich mean time"})
# Offsets are compared in a winter and a summer month of a recent year (either may be the standard one).
_SAMPLES = (datetime(2024, 1, 15, 12), datetime(2024, 7, 15, 12))


@lru_cache(maxsize=4096)  # a feed names a few zones thousands of times; the tz database does not change while running
def iana_name(name: str) -> str | None:
    """The IANA name for a zone written as an IANA name, a Windows id or a Windows display name; None if unknown."""
    name = name.strip().strip('"').strip()
    windows = _WINDOWS_ANY_CASE.get(name.lower().removeprefix(_GRAPH_PREFIX))  # Graph's "tzone://Microsoft/Utc" too
    if not name or windows is not None:
        return windows
    if _exists(name.strip("/")):
        return name.strip("/")
    return from_display_name(name)


def zone(name: str | None) -> ZoneInfo | None:
    """The zone of an IANA name, a Windows id or a Windows display name, or None."""
    found = iana_name(name) if name else None
    return ZoneInfo(found) if found else None


def from_display_name(name: str) -> str | None:
    """The IANA zone a Windows display name (`(UTC+01:00) Amsterdam, Berlin, …`) stands for, or None."""
    match = _DISPLAY.fullmatch(name.strip())
    if match is None:
        return None
    offset = _offset(match)
    rest = " ".join(match["rest"].split())
    if not rest or rest.lower() in _UNIVERSAL:
        return "UTC" if offset == timedelta(0) else None
    for candidate in _as_windows_ids(rest):
        found = _WINDOWS_ANY_CASE.get(candidate.lower())
        if found is not None and _keeps(found, offset):
            return found
    for place in _PLACE_SEPARATORS.split(rest):
        for found in _cities().get(_city_key(place), ()):
            if _keeps(found, offset):
                return found
    return None


def _offset(match: re.Match[str]) -> timedelta:
    if match["hours"] is None:
        return timedelta(0)
    size = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"] or 0))
    return -size if match["sign"] in ("-", "\u2212") else size


def _as_windows_ids(rest: str) -> list[str]:
    """How Windows names the zone a display name describes: `Eastern Time (US & Canada)` is `Eastern
    Standard Time`, `Mountain Time (Mexico)` is `Mountain Standard Time (Mexico)`."""
    plain = re.sub(r"\s*\([^)]*\)", "", rest).strip()
    found = [rest, plain]
    for text in (rest, plain):
        if re.search(r"\bTime\b", text) and "Standard Time" not in text:
            found.append(re.sub(r"\bTime\b", "Standard Time", text, count=1))
    return found


def _city_key(place: str) -> str:
    return re.sub(r"[\s\-]+", "_", place.replace(".", "").strip()).lower()


@cache
def _cities() -> dict[str, tuple[str, ...]]:
    """Every zone of the tz database by its last part (`Sydney` → Australia/Sydney), canonical ones first."""
    canonical = set(WINDOWS_TO_OLSON.values())
    found: dict[str, list[str]] = {}
    for name in sorted(available_timezones(), key=lambda item: (item not in canonical, item)):
        last = name.rsplit("/", 1)[-1]
        if last.upper() != last or "/" in name:  # not the bare abbreviations (EST, GMT+0)
            found.setdefault(last.lower(), []).append(name)
    return {key: tuple(names) for key, names in found.items()}


def _keeps(name: str, offset: timedelta) -> bool:
    """Whether the zone is at `offset` in winter or in summer (the display's offset is the standard one)."""
    try:
        tz = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return any(moment.replace(tzinfo=tz).utcoffset() == offset for moment in _SAMPLES)


def _exists(name: str) -> bool:
    if not name or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_ZONED = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A TZID nothing resolved: the zone its times were read in, whether that is the offset the name
    states (a display name whose places matched nothing), and the UIDs of the events using it."""

    zone: tzinfo
    stated: bool
    uids: tuple[str, ...]


def place_tzids(calendar: icalendar.Calendar, instead: tzinfo) -> dict[str, Unresolved]:
    """Give zones to the date-times whose TZID icalendar could not resolve (no VTIMEZONE of that name).

    icalendar leaves such a time floating, which would be read in the calendar's zone or UTC
    without a word. A name `iana_name` knows (a Windows display name, mostly) gets its zone; any other
    gets `instead`, except a display name whose stated offset `instead` does not have (`(UTC-03:00)
    Brasilia` in a London calendar): it is read at that offset, hours nearer than `instead` would be.
    Returns the names nothing resolved.
    """
    unknown: dict[str, Unresolved] = {}
    for event in calendar.walk("VEVENT"):
        uid = str(event.get("UID", "")).strip() or "an event without UID"
        for name in _ZONED:
            for prop in _props(event.get(name)):
                if not isinstance(prop, icalendar.vDDDTypes | icalendar.vDDDLists):
                    continue  # a value icalendar could not read: the series' own problem, found when expanded
                tzid = str(prop.params.get("TZID", "")).strip()
                items = prop.dts if isinstance(prop, icalendar.vDDDLists) else [prop]
                floating = [(item, item.dt) for item in items if isinstance(item.dt, datetime) and not item.dt.tzinfo]
                if not tzid or not floating:
                    continue
                found: tzinfo | None = zone(tzid)
                if found is None:
                    seen = unknown.get(tzid) or _unresolved(tzid, instead)
                    unknown[tzid] = seen if uid in seen.uids else replace(seen, uids=(*seen.uids, uid))
                    found = seen.zone
                for item, value in floating:
                    item.dt = value.replace(tzinfo=found)
    return unknown


def _unresolved(tzid: str, instead: tzinfo) -> Unresolved:
    match = _DISPLAY.fullmatch(tzid)
    stated = _offset(match) if match is not None else None
    if stated is None or any(moment.replace(tzinfo=instead).utcoffset() == stated for moment in _SAMPLES):
        return Unresolved(instead, False, ())
    hours, rest = divmod(stated, timedelta(hours=1))
    fixed = ZoneInfo(f"Etc/GMT{-hours:+d}") if not rest and abs(hours) <= 12 else timezone(stated)
    return Unresolved(fixed, True, ())


def _props(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
