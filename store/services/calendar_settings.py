"""What an organisation's calendar settings change in what is stored, when they change.

The office-day rules, the window and the privacy setting live on the organisation
(`organisations.update_settings`); the calendar worker brings stored events in line afterwards
(worker/calendar/reevaluate.py) with these. None of them records an event: the event titles,
locations, categories and attendees they blank or bring back never appear in events
(`external_events.describe`), so receivers would see nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from store import kinds
from store.models import Calendar, Connection, ExternalEvent, Organisation
from store.services.external_events import EventRecord
from store.sql import among

_TABLE: Table = ExternalEvent.__table__  # type: ignore[assignment]
NOTES_KEPT = 20  # a calendar's notes an admin sees; the newest are kept


def followed_calendars(session: Session, organisation_id: int) -> list[int]:
    """The organisation's calendars read on their own (Outlook, Google, ICS), by id.

    A peer platform's calendars are left out: their connection reads them all at once, and some of
    their events are bookings of their own (shifts) that the office rules must not judge.
    """
    return list(
        session.scalars(
            select(Calendar.id)
            .join(Connection, Connection.id == Calendar.connection_id)
            .where(Calendar.organisation_id == organisation_id, Connection.kind.not_in(kinds.that(kinds.PEER_PLATFORM)))
            .order_by(Calendar.id)
        )
    )


def events_to_judge(
    session: Session, calendar_id: int, *, after_id: int, starting_after: datetime, limit: int
) -> list[ExternalEvent]:
    """The next `limit` events of a calendar (by id, after `after_id`) that the office rules decide
    (not Google working-location entries) and that have not started by `starting_after`."""
    return list(
        session.scalars(
            select(ExternalEvent)
            .where(
                ExternalEvent.calendar_id == calendar_id,
                ExternalEvent.id > after_id,
                ExternalEvent.working_location.is_(None),
                ExternalEvent.start_at > starting_after,
            )
            .order_by(ExternalEvent.id)
            .limit(limit)
        )
    )


def blank_details(session: Session, organisation_id: int, *, after_id: int, limit: int) -> tuple[int, int] | None:
    """Blank titles, locations, categories, attendees and working-location labels of up to `limit` of
    the organisation's stored events (by id, after `after_id`); returns the last id looked at and how
    many rows were written (those already blank are not), or None when none were left."""
    ids = list(
        session.scalars(
            select(ExternalEvent.id)
            .where(ExternalEvent.organisation_id == organisation_id, ExternalEvent.id > after_id)
            .order_by(ExternalEvent.id)
            .limit(limit)
        )
    )
    if not ids:
        return None
    result = session.execute(
        update(ExternalEvent)
        .where(
            among(session, ExternalEvent.id, ids),
            (ExternalEvent.title != "")
            | (ExternalEvent.location != "")
            | ExternalEvent.working_location_label.is_not(None)
            # An empty JSON list is "[]" both in PostgreSQL's jsonb and SQLite's text.
            | (ExternalEvent.categories != [])
            | (ExternalEvent.attendees != []),
        )
        .values(title="", location="", categories=[], attendees=[], working_location_label=None),
        execution_options={"synchronize_session": False},
    )
    _expire(session, set(ids))
    return ids[-1], int(result.rowcount)  # type: ignore[attr-defined]


def bring_back_details(session: Session, calendar_id: int, records: Iterable[EventRecord]) -> int:
    """Write back what a calendar says of events stored without it (the privacy setting was on), so
    the sync that follows finds them unchanged. Only those details are written, and only when the
    organisation keeps them now; returns how many rows were written."""
    calendar = session.get_one(Calendar, calendar_id)
    if session.get_one(Organisation, calendar.organisation_id).calendar_busy_only:
        return 0
    latest = {record.event_id: record for record in records if record.booking_id is None}
    if not latest:
        return 0
    stored = session.execute(
        select(
            ExternalEvent.id,
            ExternalEvent.event_id,
            ExternalEvent.title,
            ExternalEvent.location,
            ExternalEvent.categories,
            ExternalEvent.attendees,
            ExternalEvent.working_location_label,
        ).where(ExternalEvent.calendar_id == calendar_id, among(session, ExternalEvent.event_id, list(latest)))
    )
    rows: list[dict[str, object]] = []
    written: set[int] = set()
    for row_id, event_id, title, location, categories, attendees, label in stored:
        record = latest[event_id]
        values = {
            "title": record.title,
            "location": record.location,
            "categories": list(record.categories),
            "attendees": list(record.attendees),
            "working_location_label": record.working_location_label,
        }
        if (title, location, categories, attendees, label) != tuple(values.values()):
            rows.append({"row_id": row_id, **values})
            written.add(row_id)
    if rows:
        session.execute(  # the table's, not the ORM's bulk update (which wants the key named `id`)
            update(_TABLE)
            .where(_TABLE.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in rows[0] if name != "row_id"}),
            rows,
        )
        _expire(session, written)
    return len(rows)


def add_notes(session: Session, calendar_id: int, notes: Sequence[str]) -> None:
    """Add what bringing stored events in line met (refused office days) to the calendar's notes."""
    if not notes:
        return
    calendar = session.get_one(Calendar, calendar_id)
    calendar.last_notes = [*calendar.last_notes, *notes][-NOTES_KEPT:]


def _expire(session: Session, row_ids: set[int]) -> None:
    """Expire rows the session holds that were just written past the ORM."""
    for item in list(session.identity_map.values()):
        if isinstance(item, ExternalEvent) and item.id in row_ids:
            session.expire(item)
