"""A parsed calendar and a window to the CalendarEvents inside it, one broken series never sinking the rest.

Series (the components sharing a UID: a master and its RECURRENCE-ID overrides) are expanded one at a
time with recurring-ical-events, so a bad RRULE or an unreadable DTSTART skips that series only and
the notes say which. Cancelled instances (STATUS:CANCELLED overrides, cancelled single events) are
listed with status "cancelled" and show-as "free" rather than left out: the worker sees the
cancellation as such, and a full page's "not listed" still means "gone from the feed".
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]
import x_wr_timezone  # type: ignore[import-untyped]

from connectors.ics.translate import moment, to_event, zone
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
    calendar, fallback = _standardise(calendar, default_timezone, notes)
    events: dict[str, CalendarEvent] = {}
    skipped: list[str] = []
    duplicates = 0
    for series in _series(calendar):
        try:
            found = _occurrences(series, window, fallback)
        except Exception as error:  # whatever the library or the data throws, it is this series' problem
            reason = " ".join(str(error).split())[:120] or type(error).__name__
            skipped.append(f"{series.ical_uid or 'an event without UID'}: {reason}")
            continue
        for event in found:
            if event.event_id in events:
                duplicates += 1  # two masters with one UID: RFC 5545 forbids it, keep the first
            else:
                events[event.event_id] = event
    if skipped:
        named = "; ".join(skipped[:NOTED_SERIES]) + ("; …" if len(skipped) > NOTED_SERIES else "")
        notes.append(f"skipped {len(skipped)} series that could not be read ({named})")
    if duplicates:
        notes.append(f"ignored {duplicates} duplicate occurrence(s) (events sharing a UID)")
    ordered = sorted(events.values(), key=lambda event: (event.start, event.event_id))
    return Expansion(events=tuple(ordered), notes=tuple(notes))


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


def _occurrences(series: _Series, window: Window, fallback: ZoneInfo | None) -> list[CalendarEvent]:
    alone = icalendar.Calendar()
    for component in series.components:
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
