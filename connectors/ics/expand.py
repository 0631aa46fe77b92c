"""A parsed calendar and a window to the CalendarEvents inside it, one broken series never sinking the rest.

Series (the components sharing a UID: a master and its RECURRENCE-ID overrides) are expanded one at a
time with recurring-ical-events, so an unreadable DTSTART skips that series only and the notes say
which. Before that, what Outlook and Exchange write is read as their calendars show it, and every
departure from RFC 5545 that changes what is imported is noted with the event's UID: TZIDs without a
VTIMEZONE (`zones.place_tzids`: Windows display names resolved, others read in the feed's or the
organisation's zone), malformed recurrence rules (`rules.prepared`: the series keeps the occurrences
it names outright), all-day series ending at a UTC instant (compared as a date in the series' zone),
events that end before they start (read with the two swapped). Cancelled instances (STATUS:CANCELLED
overrides, cancelled single events) are listed with status "cancelled" and show-as "free" rather than
left out: the worker sees the cancellation as such, and a full page's "not listed" still means "gone
from the feed".
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]
import x_wr_timezone  # type: ignore[import-untyped]
from icalendar import Timezone
from icalendar.error import BrokenCalendarProperty

from connectors.ics import rules
from connectors.ics.translate import moment, to_event
from connectors.ics.zones import place_tzids, zone
from connectors.records import CalendarEvent, Window

# Dates and floating times are placed in a zone only after expansion, so ask for a little more than the
# window (no zone is more than 14 h from UTC) and cut exactly afterwards.
MARGIN = timedelta(days=1)
NOTED_SERIES = 3  # how many skipped series the notes name


@dataclass(frozen=True, slots=True)
class Expansion:
    """The window's occurrences, sorted by start, and what the admin should know."""

    events: tuple[CalendarEvent, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Series:
    uid: str
    ical_uid: str | None
    components: tuple[icalendar.Event, ...]

    @property
    def recurring(self) -> bool:
        return any(key in c for c in self.components for key in ("RRULE", "RDATE", "RECURRENCE-ID"))

    @property
    def date_only(self) -> bool:
        """The master says VALUE=DATE (icalendar still makes a date-time of it when a TZID comes along)."""
        return any(
            str(getattr(c.get("DTSTART"), "params", {}).get("VALUE", "")).upper() == "DATE" for c in self.components
        )

    def shifts(self) -> dict[date, timedelta]:
        """How far each RANGE=THISANDFUTURE override moved its instances, by its RECURRENCE-ID."""
        found: dict[date, timedelta] = {}
        for component in self.components:
            recurrence = component.get("RECURRENCE-ID")
            original = moment(recurrence)
            if original is not None and str(recurrence.params.get("RANGE", "")).upper() == "THISANDFUTURE":
                found[original] = component.start - original
        return found


def expand(calendar: icalendar.Calendar, window: Window, *, default_timezone: str | None = None) -> Expansion:
    """Every occurrence overlapping `window` ([start, end), aware times).

    The calendar's zone (X-WR-TIMEZONE, else `default_timezone`, else UTC) places all-day dates
    (midnight to midnight) and floating times.
    """
    if not (_aware(window.start) and _aware(window.end)):
        raise ValueError("the window needs aware times")
    notes: list[str] = []
    _place_zones(calendar, default_timezone, notes)
    home = _home_zone(calendar, default_timezone)
    calendar, fallback = _standardise(calendar, default_timezone, notes)
    events: dict[str, CalendarEvent] = {}
    skipped: list[str] = []
    bad_rules: list[str] = []
    tidied_rules: list[str] = []
    reversed_times: list[str] = []
    duplicates = 0
    for series in _series(calendar):
        name = series.ical_uid or "an event without UID"
        reversed_times.extend(f"{name} ({when})" for when in _ends_before_start(series))
        checked = [rules.prepared(component, home) for component in series.components]
        bad_rules.extend(f"{name}: {item.problem}" for item in checked if item.problem)
        tidied_rules.extend(f"{name}: {item.tidied}" for item in checked if item.tidied)
        try:
            found = _occurrences(series, tuple(item.component for item in checked), window, fallback)
        except Exception as error:  # whatever the library or the data throws, it is this series' problem
            reason = " ".join(str(error).split())[:120] or type(error).__name__
            skipped.append(f"{name}: {reason}")
            continue
        for event in found:
            if event.event_id in events:
                duplicates += 1  # two masters with one UID: RFC 5545 forbids it, keep the first
            else:
                events[event.event_id] = event
    if skipped:
        named = "; ".join(skipped[:NOTED_SERIES]) + ("; …" if len(skipped) > NOTED_SERIES else "")
        notes.append(f"skipped {len(skipped)} series that could not be read ({named})")
    if bad_rules:
        notes.append(
            f"read {len(bad_rules)} series with a malformed RRULE as the occurrences they name outright "
            f"(DTSTART, RDATE) only ({_named(bad_rules)})"
        )
    if tidied_rules:
        notes.append(f"read {len(tidied_rules)} RRULE(s) with stray spaces in their lists ({_named(tidied_rules)})")
    if reversed_times:
        notes.append(
            f"{len(reversed_times)} event(s) end before they start; read with start and end swapped "
            f"({_named(reversed_times)})"
        )
    if duplicates:
        notes.append(f"ignored {duplicates} duplicate occurrence(s) (events sharing a UID)")
    ordered = sorted(events.values(), key=lambda event: (event.start, event.event_id))
    return Expansion(events=tuple(ordered), notes=tuple(notes))


def _named(items: list[str]) -> str:
    return "; ".join(items[:NOTED_SERIES]) + ("; …" if len(items) > NOTED_SERIES else "")


def _feed_zone(calendar: icalendar.Calendar) -> ZoneInfo | None:
    written = calendar.get("X-WR-TIMEZONE")
    return zone(str(written)) if written is not None else None


def _place_zones(calendar: icalendar.Calendar, default_timezone: str | None, notes: list[str]) -> None:
    """Date-times whose TZID names no zone deskbridge knows are read in the feed's zone, else the
    organisation's, else UTC (a display name: at its stated offset when that zone is not), and noted
    with the events' UIDs."""
    feed, organisation = _feed_zone(calendar), zone(default_timezone)
    instead: tzinfo = feed or organisation or UTC
    where = "the feed's X-WR-TIMEZONE" if feed else "the organisation's zone" if organisation else "UTC"
    for tzid, placed in place_tzids(calendar, instead).items():
        read_in = getattr(placed.zone, "key", None) or str(placed.zone)
        why = "the offset its name states" if placed.stated else where
        uids = list(placed.uids)
        notes.append(
            f"unknown time zone TZID {tzid[:80]!r} (no VTIMEZONE; not an IANA, Windows or Windows display "
            f"name): read in {read_in} ({why}) for {len(uids)} event(s): {_named(uids)}"
        )


def _home_zone(calendar: icalendar.Calendar, default_timezone: str | None) -> tzinfo:
    """The zone the calendar's own application shows it in: its X-WR-TIMEZONE, else its only VTIMEZONE
    (Outlook writes the zones it uses), else the organisation's zone, else UTC."""
    feed = _feed_zone(calendar)
    if feed is not None:
        return feed
    written = {str(item.get("TZID", "")): item for item in calendar.walk("VTIMEZONE") if isinstance(item, Timezone)}
    if len(written) == 1:
        ((tzid, component),) = written.items()
        try:
            found: tzinfo = zone(tzid) or component.to_tz()
        except Exception:  # a VTIMEZONE icalendar cannot make a zone of: not a reason to fail the feed
            return zone(default_timezone) or UTC
        return found
    return zone(default_timezone) or UTC


def _ends_before_start(series: _Series) -> list[str]:
    """The components whose DTEND is before their DTSTART, or whose DURATION is negative, as the feed says them."""
    found = []
    for component in series.components:
        start, end = moment(component.get("DTSTART")), moment(component.get("DTEND"))
        length = _length(component.get("DURATION"))
        if start is not None and length is not None and length < timedelta(0):
            written = component["DURATION"].to_ical()
            shown = written.decode() if isinstance(written, bytes) else str(written)
            found.append(f"DTSTART {start.isoformat()}, DURATION {shown}")
        if start is None or end is None or isinstance(start, datetime) != isinstance(end, datetime):
            continue
        try:
            if end < start:
                found.append(f"DTSTART {start.isoformat()}, DTEND {end.isoformat()}")
        except TypeError:  # a floating time against a zoned one: nothing to compare
            continue
    return found


def _length(value: object) -> timedelta | None:
    try:
        found = getattr(value, "dt", None)
    except BrokenCalendarProperty:
        return None
    return found if isinstance(found, timedelta) else None


def _standardise(
    calendar: icalendar.Calendar, default_timezone: str | None, notes: list[str]
) -> tuple[icalendar.Calendar, ZoneInfo | None]:
    written = calendar.get("X-WR-TIMEZONE")
    if written is None:
        return calendar, zone(default_timezone)
    found = zone(str(written))
    if found is None:
        notes.append(f"ignored the unknown calendar time zone X-WR-TIMEZONE {str(written)[:60]!r}")
        return calendar, zone(default_timezone)
    # Google and others write UTC times and mean the X-WR-TIMEZONE; the instants stay, the zone is theirs.
    return x_wr_timezone.to_standard(calendar, timezone=found), found


def _series(calendar: icalendar.Calendar) -> Iterable[_Series]:
    groups: dict[str, tuple[str | None, list[icalendar.Event]]] = {}
    for event in calendar.walk("VEVENT"):
        if not isinstance(event, icalendar.Event):
            continue
        uid = str(event.get("UID", "")).strip() or None
        # RFC 5545 requires a UID; without one, the event's own content is the most stable name.
        key = uid or "nouid-" + hashlib.sha256(event.to_ical()).hexdigest()[:24]
        groups.setdefault(key, (uid, []))[1].append(event)
    for key, (uid, components) in groups.items():
        yield _Series(uid=key, ical_uid=uid, components=tuple(components))


def _occurrences(
    series: _Series, components: tuple[icalendar.Event, ...], window: Window, fallback: ZoneInfo | None
) -> list[CalendarEvent]:
    alone = icalendar.Calendar()
    for component in components:
        alone.add_component(component)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = recurring_ical_events.of(alone).between(window.start - MARGIN, window.end + MARGIN)
    recurring, shifts, date_only = series.recurring, series.shifts(), series.date_only
    events = []
    for occurrence in found:
        original = _original_start(occurrence, shifts) if recurring else None
        event = to_event(
            occurrence,
            uid=series.uid,
            ical_uid=series.ical_uid,
            original=original,
            fallback=fallback,
            date_only=date_only,
        )
        if _overlaps(event, window):
            events.append(event)
    return events


def _original_start(occurrence: icalendar.Event, shifts: dict[date, timedelta]) -> date:
    """The instance's start before any override moved it: what names it in its series.

    recurring-ical-events gives every instance a RANGE=THISANDFUTURE override changed that override's
    RECURRENCE-ID; undoing the override's shift on the instance's start finds the instance's own.
    """
    moved = occurrence.start
    recurrence = moment(occurrence.get("RECURRENCE-ID"))
    if recurrence is None:
        return moved
    shift = shifts.get(recurrence)
    return recurrence if shift is None else moved - shift


def _overlaps(event: CalendarEvent, window: Window) -> bool:
    if event.end <= event.start:  # an instant: in the window when it happens inside it
        return window.start <= event.start < window.end
    return event.start < window.end and event.end > window.start


def _aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None
