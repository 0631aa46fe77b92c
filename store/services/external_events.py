"""External events: what people's calendars say, kept per calendar and emitted when it changes.

The calendar sync stages each page here. An event that did not change (same etag and content)
is left alone and emits nothing, so reading a calendar twice changes nothing the second time.
With the organisation's privacy setting on, only when someone is busy is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.models import Calendar, ExternalEvent, Organisation, ShowAs, WorkingLocation

CHUNK = 500


class EventRecord(Protocol):
    """The shape of connectors.records.CalendarEvent (the store imports nothing of ours)."""

    @property
    def event_id(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def ical_uid(self) -> str | None: ...
    @property
    def recurrence_id(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def all_day(self) -> bool: ...
    @property
    def show_as(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def categories(self) -> tuple[str, ...]: ...
    @property
    def attendees(self) -> tuple[str, ...]: ...
    @property
    def working_location(self) -> str | None: ...
    @property
    def working_location_label(self) -> str | None: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def booking_id(self) -> int | None: ...


@dataclass
class Applied:
    """What staging a page did: the events made or changed, and the ones removed (with their bookings)."""

    changed: list[ExternalEvent] = field(default_factory=list)
    removed: list[ExternalEvent] = field(default_factory=list)
    echoes: int = 0  # events deskbridge wrote itself, left out


def _show_as(value: str) -> ShowAs:
    try:
        return ShowAs(value)
    except ValueError:
        return ShowAs.UNKNOWN


def _working_location(value: str | None) -> WorkingLocation | None:
    try:
        return WorkingLocation(value) if value else None
    except ValueError:
        return WorkingLocation.CUSTOM


def _values(record: EventRecord, busy_only: bool) -> dict[str, Any]:
    private = busy_only
    return {
        "ical_uid": record.ical_uid,
        "recurrence_id": record.recurrence_id,
        "start_at": record.start,
        "end_at": record.end,
        "timezone": record.timezone,
        "all_day": record.all_day,
        "show_as": _show_as(record.show_as),
        "working_location": _working_location(record.working_location),
        "working_location_label": None if private else record.working_location_label,
        "status": record.status,
        "title": "" if private else record.title,
        "location": "" if private else record.location,
        "categories": [] if private else list(record.categories),
        "attendees": [] if private else list(record.attendees),
        "etag": record.etag,
    }


def describe(event: ExternalEvent) -> dict[str, Any]:
    """What `external_event.*` events carry: when and how busy, never titles or attendees."""
    return {
        "external_event_id": event.id,
        "member_id": event.member_id,
        "calendar_id": event.calendar_id,
        "provider": event.provider,
        "start": event.start_at,
        "end": event.end_at,
        "all_day": event.all_day,
        "show_as": event.show_as,
        "status": event.status,
        "working_location": event.working_location,
    }


def apply(
    session: Session,
    calendar: Calendar,
    provider: str,
    events: Sequence[EventRecord],
    removed_ids: Sequence[str],
) -> Applied:
    """Upsert `events` and delete `removed_ids` of one calendar; emits `external_event.upserted` and
    `external_event.deleted` for what really changed. Events deskbridge wrote itself are left out."""
    organisation = session.get_one(Organisation, calendar.organisation_id)
    applied = Applied()
    theirs = []
    for record in events:
        if record.booking_id is not None:
            applied.echoes += 1
        else:
            theirs.append(record)
    latest = {record.event_id: record for record in theirs}
    ids = list(latest)
    now = utcnow()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        existing = {row.event_id: row for row in _rows(session, calendar.id, chunk)}
        for event_id in chunk:
            values = _values(latest[event_id], organisation.calendar_busy_only)
            row = existing.get(event_id)
            if row is None:
                row = ExternalEvent(
                    organisation_id=calendar.organisation_id,
                    calendar_id=calendar.id,
                    member_id=calendar.member_id,
                    provider=provider,
                    event_id=event_id,
                    changed_at=now,
                    **values,
                )
                session.add(row)
            elif all(getattr(row, name) == value for name, value in values.items()):
                continue
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.changed_at = now
            applied.changed.append(row)
    session.flush()
    for row in applied.changed:
        outbox.record(session, calendar.organisation_id, "external_event.upserted", describe(row))
    applied.removed.extend(remove(session, calendar, removed_ids))
    return applied


def _rows(session: Session, calendar_id: int, event_ids: Sequence[str]) -> Iterable[ExternalEvent]:
    return session.scalars(
        select(ExternalEvent).where(ExternalEvent.calendar_id == calendar_id, ExternalEvent.event_id.in_(event_ids))
    )


def remove(session: Session, calendar: Calendar, event_ids: Sequence[str]) -> list[ExternalEvent]:
    """Delete these events of a calendar (unknown ids are ignored); emits `external_event.deleted`."""
    gone: list[ExternalEvent] = []
    ids = list(dict.fromkeys(event_ids))
    for start in range(0, len(ids), CHUNK):
        gone.extend(_rows(session, calendar.id, ids[start : start + CHUNK]))
    for row in gone:
        outbox.record(session, calendar.organisation_id, "external_event.deleted", describe(row))
        session.delete(row)
    return gone


def others_in_window(
    session: Session, calendar: Calendar, kept_ids: set[str], start: datetime, end: datetime
) -> list[str]:
    """After a complete listing of [start, end): the stored events of the window it did not list."""
    stored = session.scalars(
        select(ExternalEvent.event_id).where(
            ExternalEvent.calendar_id == calendar.id, ExternalEvent.end_at > start, ExternalEvent.start_at < end
        )
    )
    return [event_id for event_id in stored if event_id not in kept_ids]


def forget_before(session: Session, calendar: Calendar, moment: datetime) -> int:
    """Drop events that ended before the window (they fell out of it as time moved); no event emitted."""
    result = session.execute(
        delete(ExternalEvent).where(ExternalEvent.calendar_id == calendar.id, ExternalEvent.end_at <= moment)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_from(session: Session, calendar: Calendar, moment: datetime) -> int:
    """Drop events that start at or after the window's end (it shrank): no longer kept in step, so not
    kept at all; no event emitted, since nothing changed in the calendar."""
    result = session.execute(
        delete(ExternalEvent).where(ExternalEvent.calendar_id == calendar.id, ExternalEvent.start_at >= moment)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def select_external_events(
    organisation_id: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    member_id: int | None = None,
) -> Select[ExternalEvent]:
    """An organisation's external events overlapping [start, end), optionally one member's, unordered."""
    query = select(ExternalEvent).where(ExternalEvent.organisation_id == organisation_id)
    if start is not None:
        query = query.where(ExternalEvent.end_at > start)
    if end is not None:
        query = query.where(ExternalEvent.start_at < end)
    if member_id is not None:
        query = query.where(ExternalEvent.member_id == member_id)
    return query
