"""External events: what people's calendars say, kept per calendar and emitted when it changes.

The calendar sync stages each page here. An event that did not change (same etag and content)
is left alone and emits nothing, so reading a calendar twice changes nothing the second time.
With the organisation's privacy setting on, only when someone is busy is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.models import Calendar, ExternalEvent, Organisation, ShowAs, WorkingLocation
from store.sql import among

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


class CalendarKeys(Protocol):
    """What staging needs of a calendar: a `Calendar`, or the sync's context read once per sync."""

    @property
    def id(self) -> int: ...
    @property
    def organisation_id(self) -> int: ...
    @property
    def member_id(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Changed:
    """An event a page made or changed: what the engine needs to bring its booking in line."""

    id: int
    event_id: str
    booking_id: int | None
    booking_refused: str | None


@dataclass
class Applied:
    """What staging a page did: the events made or changed, and the ones removed (with their bookings)."""

    changed: list[Changed] = field(default_factory=list)
    removed: list[Removed] = field(default_factory=list)
    echoes: int = 0  # events deskbridge wrote itself, left out


_SHOW_AS = {member.value: member for member in ShowAs}


def _show_as(value: str) -> ShowAs:
    return _SHOW_AS.get(value, ShowAs.UNKNOWN)  # a dict, not ShowAs(value): this runs for every event read


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


class Described(Protocol):
    """What `describe` reads: an ExternalEvent, or a row of its columns."""

    @property
    def id(self) -> int: ...
    @property
    def member_id(self) -> int | None: ...
    @property
    def calendar_id(self) -> int: ...
    @property
    def provider(self) -> str: ...
    @property
    def start_at(self) -> datetime: ...
    @property
    def end_at(self) -> datetime: ...
    @property
    def all_day(self) -> bool: ...
    @property
    def show_as(self) -> ShowAs: ...
    @property
    def status(self) -> str: ...
    @property
    def working_location(self) -> WorkingLocation | None: ...


def describe(event: Described) -> dict[str, Any]:
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
    calendar: CalendarKeys,
    provider: str,
    events: Sequence[EventRecord],
    removed_ids: Sequence[str],
    *,
    busy_only: bool | None = None,
    locked: bool = False,
) -> Applied:
    """Upsert `events` and delete `removed_ids` of one calendar; emits `external_event.upserted` and
    `external_event.deleted` for what really changed. Events deskbridge wrote itself are left out.

    `busy_only` is the organisation's privacy setting (read from it when not given); `locked`: the
    caller holds the calendar's row lock already. See `apply_many`, which this is for one calendar.
    """
    if busy_only is None:
        busy_only = session.get_one(Organisation, calendar.organisation_id).calendar_busy_only
    # Writers of one calendar take turns (a poll and a webhook may overlap): each sees what the
    # other stored, instead of both inserting the same new event. A row lock: PostgreSQL only,
    # SQLite has one writer at a time anyway.
    if not locked:
        lock(session, [calendar.id])
    [applied] = apply_many(session, [Staging(calendar, provider, events, removed_ids, busy_only)])
    return applied


@dataclass(frozen=True, slots=True)
class Staging:
    """One calendar's page for `apply_many`."""

    calendar: CalendarKeys
    provider: str
    events: Sequence[EventRecord]
    removed_ids: Sequence[str]
    busy_only: bool


def apply_many(session: Session, pages: Sequence[Staging]) -> list[Applied]:
    """`apply` for pages of several calendars at once, whose row locks (`lock`) the caller holds; what
    each page did, in order.

    Plain rows and statements rather than ORM objects: a first sync stores 200 events a calendar for
    every person, and a batch's incremental round a few events in each of many calendars. Per chunk
    of events, whatever calendars they are of: one query for what is stored, one insert of the
    newcomers (PostgreSQL: one statement, see `_insert`), one update of the changed (executed for
    each); the removed go in one statement. Rows of these events the session holds are expired,
    since they were written past the ORM.
    """
    results = [Applied() for _ in pages]
    latest: dict[tuple[int, str], tuple[int, EventRecord]] = {}  # (calendar, event) -> (page, record)
    for number, page in enumerate(pages):
        for record in page.events:
            if record.booking_id is not None:
                results[number].echoes += 1
            else:
                # A page may repeat an event: the last word wins.
                latest[(page.calendar.id, record.event_id)] = (number, record)
    # Several pages of one calendar are one listing read in order: an event removed on a later page
    # (or the same one) than it was listed on is gone; one listed after its removal is back.
    removals: dict[tuple[int, str], int] = {}  # (calendar, event) -> the page that removed it last
    for number, page in enumerate(pages):
        for event_id in page.removed_ids:
            key = (page.calendar.id, event_id)
            if key in latest and latest[key][0] <= number:
                del latest[key]
            removals[key] = number
    for key in latest:
        removals.pop(key, None)
    keys = list(latest)
    now = utcnow()
    for start in range(0, len(keys), CHUNK):
        _stage_chunk(session, pages, results, keys[start : start + CHUNK], latest, now)
    _forget_loaded(session, set(latest))
    gone = _remove_pairs(session, [(pages[number].calendar, event_id) for (_, event_id), number in removals.items()])
    for items in gone.values():
        for item in items:
            results[removals[(item.calendar_id, item.event_id)]].removed.append(item)
    return results


def _stage_chunk(
    session: Session,
    pages: Sequence[Staging],
    results: list[Applied],
    keys: list[tuple[int, str]],
    latest: dict[tuple[int, str], tuple[int, EventRecord]],
    now: datetime,
) -> None:
    existing = {(row.calendar_id, row.event_id): row for row in session.execute(_stored(session, keys))}
    new_rows: dict[tuple[int, str], dict[str, Any]] = {}
    changed_rows: list[dict[str, Any]] = []
    written: dict[tuple[int, str], tuple[Changed, dict[str, Any], bool]] = {}
    for key in keys:
        number, record = latest[key]
        values = _values(record, pages[number].busy_only)
        row = existing.get(key)
        if row is None:
            new_rows[key] = values
        elif any(getattr(row, name) != value for name, value in values.items()):
            changed_rows.append({"row_id": row.id, **values})
            # Emitted only when what the event says changed: a new title or etag alone is stored
            # (the office rules read it) but would reach receivers as the same event again.
            shown = any(getattr(row, name) != values[name] for name in _EMITTED)
            written[key] = (Changed(row.id, key[1], row.booking_id, row.booking_refused), values, shown)
    if changed_rows:
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in _FIELDS} | {"changed_at": now}),
            changed_rows,
        )
    inserted = _insert(session, [(pages[latest[key][0]], key[1], values) for key, values in new_rows.items()], now)
    for calendar_id, event_id, row_id in inserted:
        key = (calendar_id, event_id)
        written[key] = (Changed(row_id, event_id, None, None), new_rows[key], True)
    for key in keys:  # in the pages' order, as the calendars listed them
        if key in written:
            number = latest[key][0]
            change, values, shown = written[key]
            results[number].changed.append(change)
            if shown:
                _emit(session, pages[number].calendar, pages[number].provider, change.id, values)


def lock(session: Session, calendar_ids: Sequence[int]) -> None:
    """Take the row locks of these calendars until the transaction ends, in id order (so two writers
    locking overlapping sets queue up instead of deadlocking). PostgreSQL: row locks; SQLite has one
    writer at a time and ignores FOR UPDATE."""
    ids = sorted(set(calendar_ids))
    if ids:
        session.execute(select(Calendar.id).where(Calendar.id.in_(ids)).order_by(Calendar.id).with_for_update())


_TABLE: Table = ExternalEvent.__table__  # type: ignore[assignment]
_FIELDS = (
    "ical_uid", "recurrence_id", "start_at", "end_at", "timezone", "all_day", "show_as", "working_location",
    "working_location_label", "status", "title", "location", "categories", "attendees", "etag",
)  # fmt: skip  # what _values gives, in the order of _INSERT's arrays


def _stored(session: Session, keys: Sequence[tuple[int, str]]) -> Select[Any]:
    """The stored rows of these (calendar id, event id) (what is compared, and what the engine needs), as
    plain rows. On PostgreSQL the pairs are two arrays zipped by `unnest` and joined on the unique
    index: one probe a pair, one parameter an array."""
    columns = [getattr(ExternalEvent, name) for name in _FIELDS]
    query = select(
        ExternalEvent.id,
        ExternalEvent.calendar_id,
        ExternalEvent.event_id,
        ExternalEvent.booking_id,
        ExternalEvent.booking_refused,
        *columns,
    )
    if session.get_bind().dialect.name != "postgresql":
        return query.where(tuple_(ExternalEvent.calendar_id, ExternalEvent.event_id).in_(list(keys)))
    pairs = (
        func.unnest(
            cast([calendar_id for calendar_id, _ in keys], ARRAY(Integer)),
            cast([event_id for _, event_id in keys], ARRAY(String)),
        )
        .table_valued("calendar_id", "event_id")
        .render_derived()
    )
    return query.join(
        pairs, and_(ExternalEvent.calendar_id == pairs.c.calendar_id, ExternalEvent.event_id == pairs.c.event_id)
    )


_INSERT = text(
    """
    INSERT INTO external_events
        (organisation_id, calendar_id, member_id, provider, event_id, ical_uid, recurrence_id, start_at, end_at,
         timezone, all_day, show_as, working_location, working_location_label, status, title, location,
         categories, attendees, etag, changed_at, extra, created_at, updated_at)
    SELECT organisation_id, calendar_id, member_id, provider, event_id, ical_uid, recurrence_id, start_at,
           end_at, timezone, all_day, show_as, working_location, working_location_label, status, title, location,
           categories, attendees, etag, :now, '{}'::jsonb, :now, :now
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS new (
        organisation_id integer, calendar_id integer, member_id integer, provider varchar,
        event_id varchar, ical_uid varchar, recurrence_id varchar, start_at timestamptz, end_at timestamptz,
        timezone varchar, all_day boolean, show_as varchar, working_location varchar, working_location_label varchar,
        status varchar, title text, location text, categories jsonb, attendees jsonb, etag varchar
    )
    RETURNING calendar_id, event_id, id
    """
)


def _insert(
    session: Session, rows: list[tuple[Staging, str, dict[str, Any]]], now: datetime
) -> list[tuple[int, str, int]]:
    """Insert new events, each (its page, its event id, its values); returns (calendar id, event id, row id) of each.

    On PostgreSQL one statement whose one parameter is the rows as a JSON document, which PostgreSQL
    takes apart (`jsonb_to_recordset`): the text is the same for every page (parsed once), and the
    rows are encoded by the json module's C encoder. Sixteen arrays of a page's values, as the
    directory's staging sends, cost more: the driver dumps array elements one by one in Python.
    Elsewhere one executemany.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        document = [{**_keys(page), "event_id": event_id, **_plain(values)} for page, event_id, values in rows]
        result = session.execute(_INSERT, {"now": now, "rows": json.dumps(document)})
        return [(int(calendar_id), str(event_id), int(row_id)) for calendar_id, event_id, row_id in result]
    statement = insert(_TABLE).returning(
        _TABLE.c.calendar_id, _TABLE.c.event_id, _TABLE.c.id, sort_by_parameter_order=True
    )
    result = session.execute(
        statement,
        [{**_keys(page), "changed_at": now, "event_id": event_id, **values} for page, event_id, values in rows],
    )
    return [(int(calendar_id), str(event_id), int(row_id)) for calendar_id, event_id, row_id in result]


def _keys(page: Staging) -> dict[str, Any]:
    calendar = page.calendar
    return {
        "organisation_id": calendar.organisation_id,
        "calendar_id": calendar.id,
        "member_id": calendar.member_id,
        "provider": page.provider,
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """A row's values as JSON can carry them: times in ISO 8601 (with their offset), enums by value."""
    plain = dict(values)
    for name in ("start_at", "end_at"):
        if values[name].tzinfo is None:  # as the UTC column refuses them: PostgreSQL would read local time
            raise ValueError("naive datetime given to a UTC column")
        plain[name] = values[name].isoformat()
    plain["show_as"] = values["show_as"].value
    if values["working_location"] is not None:
        plain["working_location"] = values["working_location"].value
    return plain


def _emit(session: Session, calendar: CalendarKeys, provider: str, row_id: int, values: dict[str, Any]) -> None:
    """`external_event.upserted` for a row written past the ORM: what `describe` says of it."""
    outbox.record(
        session,
        calendar.organisation_id,
        "external_event.upserted",
        {
            "external_event_id": row_id,
            "member_id": calendar.member_id,
            "calendar_id": calendar.id,
            "provider": provider,
            "start": values["start_at"],
            "end": values["end_at"],
            "all_day": values["all_day"],
            "show_as": values["show_as"],
            "status": values["status"],
            "working_location": values["working_location"],
        },
    )


# What `external_event.upserted` says of an event (besides its ids), as stored.
_EMITTED = ("start_at", "end_at", "all_day", "show_as", "status", "working_location")


def _forget_loaded(session: Session, keys: set[tuple[int, str]]) -> None:
    """Expire rows of these (calendar id, event id) the session holds: they were just written past the ORM."""
    for item in list(session.identity_map.values()):
        if isinstance(item, ExternalEvent) and (item.calendar_id, item.event_id) in keys:
            session.expire(item)


@dataclass(frozen=True, slots=True)
class Removed:
    """An event `remove` deleted: what the engine needs to release its booking."""

    id: int
    calendar_id: int
    event_id: str
    booking_id: int | None


_DESCRIBED = (
    ExternalEvent.id, ExternalEvent.organisation_id, ExternalEvent.member_id, ExternalEvent.calendar_id,
    ExternalEvent.provider, ExternalEvent.start_at, ExternalEvent.end_at, ExternalEvent.all_day,
    ExternalEvent.show_as, ExternalEvent.status, ExternalEvent.working_location, ExternalEvent.booking_id,
    ExternalEvent.event_id,
)  # fmt: skip  # what `describe` reads, and the booking


def remove(session: Session, calendar: CalendarKeys, event_ids: Sequence[str]) -> list[Removed]:
    """Delete these events of a calendar (unknown ids are ignored); emits `external_event.deleted`."""
    return _remove_pairs(session, [(calendar, event_id) for event_id in dict.fromkeys(event_ids)]).get(calendar.id, [])


def _remove_pairs(session: Session, pairs: Sequence[tuple[CalendarKeys, str]]) -> dict[int, list[Removed]]:
    """Delete these (calendar, event id), whatever calendars; what went, by calendar id.

    One `DELETE … RETURNING` a chunk, past the ORM (an incremental round deletes a few events in
    many calendars: a select and a flush each would cost a round trip); rows of them the session
    holds are let go of.
    """
    gone: dict[int, list[Removed]] = {}
    organisations = {calendar.id: calendar.organisation_id for calendar, _ in pairs}
    for start in range(0, len(pairs), CHUNK):
        chunk = [(calendar.id, event_id) for calendar, event_id in pairs[start : start + CHUNK]]
        rows = session.execute(
            delete(ExternalEvent)
            .where(tuple_(ExternalEvent.calendar_id, ExternalEvent.event_id).in_(chunk))
            .returning(*_DESCRIBED)
            .execution_options(synchronize_session=False)
        ).all()
        for row in sorted(rows, key=lambda row: row.id):
            outbox.record(session, organisations[row.calendar_id], "external_event.deleted", describe(row))
            gone.setdefault(row.calendar_id, []).append(Removed(row.id, row.calendar_id, row.event_id, row.booking_id))
    if gone:
        deleted = {item.id for items in gone.values() for item in items}
        for held in list(session.identity_map.values()):
            if isinstance(held, ExternalEvent) and held.id in deleted:
                session.expunge(held)
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


def forget_outside(session: Session, calendar: CalendarKeys, start: datetime, end: datetime) -> int:
    """`forget_before(start)` and `forget_from(end)` in one statement (what every sync ends with)."""
    result = session.execute(
        delete(ExternalEvent).where(
            ExternalEvent.calendar_id == calendar.id, or_(ExternalEvent.end_at <= start, ExternalEvent.start_at >= end)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_outside_many(session: Session, calendar_ids: Sequence[int], start: datetime, end: datetime) -> int:
    """`forget_outside` for several calendars in one statement (a batch of syncs ending together)."""
    if not calendar_ids:
        return 0
    result = session.execute(
        delete(ExternalEvent).where(
            among(session, ExternalEvent.calendar_id, sorted(set(calendar_ids))),
            or_(ExternalEvent.end_at <= start, ExternalEvent.start_at >= end),
        ),
        # Nothing forgotten is in play: the batch's session ends with this transaction.
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


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
