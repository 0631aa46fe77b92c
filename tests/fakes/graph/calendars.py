"""The fake's Outlook calendars: per-person events and weekly series, and the test API that changes them.

State only; Graph's HTTP semantics (calendarView delta, event writes) are in calendar_api.py.

    calendar = fake.calendars.add_calendar("u1", "ada@contoso.example")
    fake.calendars.add_event("u1", "Standup", start, end, zone="W. Europe Standard Time")
    fake.calendars.add_series("u1", "Weekly", first_start, timedelta(hours=1), weeks=8, zone=...)
    fake.calendars.move_occurrence("u1", series_id, day, new_start, new_end)  # an exception
    fake.calendars.cancel_occurrence("u1", series_id, day)                   # deleted instance

Times given to the test API are aware datetimes (all-day events take dates). A series repeats its
first start's wall-clock time weekly in its zone, across DST changes, as Outlook does. Every change
bumps the item's changeKey and tells `listener` (the subscriptions), after the lock is released.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

Listener = Callable[[str, str, str], None]  # (user id, event id, change type)


def zone(name: str) -> ZoneInfo:
    """A Windows or IANA zone name as a ZoneInfo (KeyError for names Graph would refuse)."""
    if name.strip().lower() in ("utc", "tzone://microsoft/utc"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(WINDOWS_TO_OLSON.get(name, name))
    except (ValueError, OSError):
        raise KeyError(name) from None


@dataclass
class Event:
    """A single event, or one instance of a series (then `series_id` and `original_start` are set)."""

    id: str
    subject: str
    start: datetime  # aware UTC; for all-day events midnight UTC of `start_day` (unused)
    end: datetime
    zone: str  # originalStartTimeZone, as written (Windows or IANA)
    all_day: bool = False
    start_day: date | None = None
    end_day: date | None = None  # exclusive
    show_as: str = "busy"
    is_cancelled: bool = False
    location: str = ""
    categories: list[str] = field(default_factory=list)
    attendees: list[str] = field(default_factory=list)
    transaction_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)  # extended property id (lower-cased) -> value
    ical_uid: str = field(default_factory=lambda: uuid.uuid4().hex.upper())
    change_key: str = "1"
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    series_id: str | None = None
    original_start: datetime | None = None
    kind: str = "singleInstance"

    def span(self) -> tuple[datetime, datetime]:
        """When the event takes place, in UTC (all-day: midnight to midnight in its zone)."""
        if self.all_day and self.start_day and self.end_day:
            local = zone(self.zone)
            return (
                datetime.combine(self.start_day, time(), local).astimezone(UTC),
                datetime.combine(self.end_day, time(), local).astimezone(UTC),
            )
        return self.start, self.end


@dataclass
class Series:
    """A weekly series: `weeks` occurrences at the first start's wall-clock time in `zone`."""

    id: str
    subject: str
    first: datetime  # naive wall-clock time in `zone`
    duration: timedelta
    zone: str
    weeks: int
    location: str = ""
    show_as: str = "busy"
    ical_uid: str = field(default_factory=lambda: uuid.uuid4().hex.upper())
    version: int = 1
    moved: dict[date, tuple[datetime, datetime, int]] = field(default_factory=dict)  # day -> UTC start, end, version
    deleted: set[date] = field(default_factory=set)
    cancelled: dict[date, int] = field(default_factory=dict)  # day -> version (isCancelled instances)

    def instances(self) -> list[Event]:
        """The occurrences and exceptions, as events with ids of their own."""
        local = zone(self.zone)
        out: list[Event] = []
        for week in range(self.weeks):
            wall = self.first + timedelta(weeks=week)
            day = wall.date()
            if day in self.deleted:
                continue
            original = wall.replace(tzinfo=local).astimezone(UTC)
            start, end = original, (wall + self.duration).replace(tzinfo=local).astimezone(UTC)
            change = f"{self.version}"
            kind = "occurrence"
            if day in self.moved:
                start, end, version = self.moved[day]
                change, kind = f"{self.version}.m{version}", "exception"
            if day in self.cancelled:
                change += f".c{self.cancelled[day]}"
            out.append(
                Event(
                    id=f"{self.id}_{day:%Y%m%d}",
                    subject=self.subject,
                    start=start,
                    end=end,
                    zone=self.zone,
                    show_as=self.show_as,
                    is_cancelled=day in self.cancelled,
                    location=self.location,
                    ical_uid=self.ical_uid,
                    change_key=change,
                    series_id=self.id,
                    original_start=original,
                    kind=kind,
                )
            )
        return out


@dataclass
class Calendar:
    """One person's primary calendar."""

    user_id: str
    events: dict[str, Event] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)  # transactionId -> event id


class Calendars:
    """Every person's calendar; thread-safe. `page_size` applies when no `odata.maxpagesize` is asked."""

    def __init__(self, *, page_size: int = 10) -> None:
        self.page_size = page_size
        self.calendars: dict[str, Calendar] = {}
        self.aliases: dict[str, str] = {}  # userPrincipalName (lower-cased) -> user id
        self.epoch = 0
        self.resync_code = "syncStateNotFound"  # or "resyncRequired"
        self.listener: Listener | None = None
        self.lock = threading.RLock()
        self._ids = itertools.count(1)

    # --- the test API --------------------------------------------------------------------------

    def add_calendar(self, user_id: str, upn: str | None = None) -> Calendar:
        """Give a person a mailbox (addressable by id, and by userPrincipalName when given)."""
        with self.lock:
            calendar = self.calendars.setdefault(user_id, Calendar(user_id))
            if upn:
                self.aliases[upn.lower()] = user_id
            return calendar

    def calendar(self, user: str) -> Calendar | None:
        """The calendar of a user id or userPrincipalName."""
        with self.lock:
            return self.calendars.get(user) or self.calendars.get(self.aliases.get(user.lower(), ""))

    def add_event(self, user: str, subject: str, start: datetime | date, end: datetime | date, **fields: Any) -> Event:
        """A single event; dates make it all-day. `fields`: zone, show_as, location, categories, attendees…"""
        event_id = fields.pop("event_id", None) or f"AAMkAD{next(self._ids):06d}="
        with self.lock:
            event = Event(id=event_id, subject=subject, start=_utc(start), end=_utc(end), zone="UTC")
            _apply(event, {"start": start, "end": end, **fields})
            self._need(user).events[event_id] = event
        self._tell(user, event_id, "created")
        return event

    def update_event(self, user: str, event_id: str, **fields: Any) -> Event:
        """Change (move: start=…, end=…) an event; its changeKey moves on."""
        with self.lock:
            event = self._need(user).events[event_id]
            _apply(event, fields)
            _bump(event)
        self._tell(user, event_id, "updated")
        return event

    def cancel_event(self, user: str, event_id: str) -> None:
        """The organiser cancelled the meeting: it stays in this calendar with isCancelled."""
        self.update_event(user, event_id, is_cancelled=True)

    def delete_event(self, user: str, event_id: str) -> bool:
        """Delete an event (False when there was none)."""
        with self.lock:
            gone = self._need(user).events.pop(event_id, None)
        if gone is not None:
            self._tell(user, event_id, "deleted")
        return gone is not None

    def add_series(
        self, user: str, subject: str, first: datetime, duration: timedelta, *, weeks: int, zone_name: str, **kw: Any
    ) -> Series:
        """A weekly series starting at `first` (aware; its wall-clock time in `zone_name` repeats)."""
        series_id = kw.pop("series_id", None) or f"AAMkSERIES{next(self._ids):04d}="
        wall = first.astimezone(zone(zone_name)).replace(tzinfo=None)
        with self.lock:
            series = Series(series_id, subject, wall, duration, zone_name, weeks, **kw)
            self._need(user).series[series_id] = series
        self._tell(user, series_id, "created")
        return series

    def move_occurrence(self, user: str, series_id: str, day: date, start: datetime, end: datetime) -> None:
        """Make the occurrence of `day` (its original local date) an exception at another time."""
        with self.lock:
            series = self._need(user).series[series_id]
            previous = series.moved.get(day, (start, end, 0))[2]
            series.moved[day] = (_utc(start), _utc(end), previous + 1)
        self._tell(user, f"{series_id}_{day:%Y%m%d}", "updated")

    def cancel_occurrence(self, user: str, series_id: str, day: date, *, remove: bool = True) -> None:
        """Delete the occurrence of `day` (`remove`), or keep it marked isCancelled (a cancelled meeting)."""
        with self.lock:
            series = self._need(user).series[series_id]
            if remove:
                series.deleted.add(day)
            else:
                series.cancelled[day] = series.cancelled.get(day, 0) + 1
        self._tell(user, f"{series_id}_{day:%Y%m%d}", "deleted" if remove else "updated")

    def rename_series(self, user: str, series_id: str, subject: str) -> None:
        """Change the whole series: every instance changes."""
        with self.lock:
            series = self._need(user).series[series_id]
            series.subject = subject
            series.version += 1
        self._tell(user, series_id, "updated")

    def expire_tokens(self, code: str = "syncStateNotFound") -> None:
        """Forget every sync state: delta and skip tokens made before now answer 410 with `code`."""
        with self.lock:
            self.epoch += 1
            self.resync_code = code

    # --- for calendar_api ----------------------------------------------------------------------

    def view(self, calendar: Calendar, start: datetime, end: datetime) -> dict[str, Event]:
        """The instances overlapping [start, end), by id (what calendarView lists)."""
        with self.lock:
            found: dict[str, Event] = {}
            candidates = itertools.chain(
                calendar.events.values(), *(series.instances() for series in calendar.series.values())
            )
            for event in candidates:
                first, last = event.span()
                if first < end and last > start:
                    found[event.id] = event
            return found

    def _need(self, user: str) -> Calendar:
        calendar = self.calendar(user)
        return calendar if calendar is not None else self.add_calendar(user)

    def _tell(self, user: str, event_id: str, change_type: str) -> None:
        calendar = self.calendar(user)
        if self.listener is not None and calendar is not None:
            self.listener(calendar.user_id, event_id, change_type)


def _utc(moment: datetime | date) -> datetime:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("give the fake aware datetimes")
        return moment.astimezone(UTC)
    return datetime.combine(moment, time(), UTC)


def _apply(event: Event, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name in ("start", "end"):
            is_day = not isinstance(value, datetime)
            event.all_day = is_day
            setattr(event, f"{name}_day", value if is_day else None)
            setattr(event, name, _utc(value))
        elif hasattr(event, name):
            setattr(event, name, value)
        else:
            raise KeyError(name)
    event.modified = datetime.now(UTC)


def _bump(event: Event) -> None:
    event.change_key = str(int(event.change_key) + 1) if event.change_key.isdigit() else event.change_key + "+"
