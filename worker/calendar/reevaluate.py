"""Stored calendar events brought in line when the organisation's calendar settings change.

A sync only looks at events that changed, so a change of `office_rules`, `calendar_window_days` or
`calendar_busy_only` (`PATCH /v1/organisation`) reaches events already stored through this job,
queued after the change commits (`settings_changed`). Every step reads the settings as they are when
it runs, never as the message says, so a late or repeated job only repeats what is done. Each step is a follow-up
(store/services/follow_ups.py): owed in the transaction that asked for it, cleared by its job when
done, queued again by the scheduler's sweep if its job was lost:

- **office rules**: every stored event of the organisation's own calendars (Outlook, Google, ICS;
  not a peer platform's, whose shifts are bookings of their own) that has not started is judged by
  the rules again, one job per calendar (`reevaluate_calendar`), in batches of `BATCH` events a
  transaction, each taking its turn on the calendar's row as a sync's page does. An event that now
  is an office day gets its booking (a clash is refused, kept on the event and emitted as
  `external_event.booking_refused`, as in a sync); a calendar booking whose event no longer is one
  is cancelled (`booking.cancelled`). Bookings made by hand are never touched, nor an office day's
  booking someone cancelled by hand (not brought back). Google working-location entries are not the
  rules' to judge and events that started are history: both are left as they are. With
  `calendar_busy_only` on, nothing the rules read (titles, categories, locations) is stored, so the
  calendar is read again instead (`reread`): a full round of the window, staged as a sync stages it,
  with every listed event judged by its record.
- **window**: a sync of every calendar is asked for. The connectors keep the window their cursor was
  made for and list the whole window again when it no longer matches (Graph's deltaLink, a Google
  sync token, an ICS feed's fingerprint), so a wider window's new days are read from scratch; a
  narrower one's outer events are forgotten by the sync's `forget_outside`, as when time moves.
- **privacy on**: `organisations.update_settings` blanks stored details in the same transaction;
  this job blanks them again in batches, at once and a sync's lease later, for pages a sync that
  started before the change (it reads the setting when it starts) committed after it. **Off**: every
  calendar is read again (`reread`), its details written back silently before the round is staged,
  so no `external_event.upserted` goes out for details that events never carry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.outbound import UnsafeURL
from connectors.records import CalendarEvent, CalendarPage, ConnectorError, Window
from infra.redis_client import note_unsent
from store.columns import utcnow
from store.db import transaction
from store.models import (
    LIVE_STATUSES,
    Booking,
    BookingStatus,
    Calendar,
    Connection,
    ExternalEvent,
    Organisation,
)
from store.services import calendar_settings, calendars, connections, external_events, follow_ups
from store.sql import among
from sync.calendar import engine, readers
from sync.calendar.rules import follows_rules, office_day
from worker.calendar import jobs
from worker.follow_ups import finished, owed, put_off, starting
from worker.queue import ActorName, Queue
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

BATCH = 500  # events judged (or blanked) in one transaction
SETTINGS = follow_ups.CALENDAR_SETTINGS  # each also names the follow-up its change owes
RULES, WINDOW, BUSY_ONLY = SETTINGS
CANCELLED_BY_CALENDAR = "calendar_event_changed"  # the reason the engine cancels a calendar booking with


class CalendarBusy(Exception):
    """A sync holds the calendar: the job is tried again later (Dramatiq's retries, with backoff)."""


class ReadFailed(Exception):
    """The calendar refused for now (recorded on it, as a sync records it): the job is tried again later."""


def settings_changed(queue: Queue, organisation_id: int, changed: Sequence[str]) -> None:
    """For the API, after the commit that changed some of the organisation's calendar settings (their
    names, as in `SETTINGS`; others are ignored). Does not raise: that commit recorded what it owes
    (`organisations.update_settings`, a follow-up per setting), which the follow-up sweep queues if
    this job is lost."""
    wanted = sorted(set(changed) & set(SETTINGS))
    if not wanted:
        return
    try:
        queue.send(ActorName.REEVALUATE_ORGANISATION, organisation_id, wanted)
    except Exception:
        message = "could not enqueue bringing organisation %d's calendars in line with %s"
        note_unsent(logger, message, organisation_id, wanted)


def plan(
    worker_runtime: Runtime, organisation_id: int, changed: Sequence[str], *, again: bool = False
) -> dict[str, int]:
    """Do what the change of the named settings asks (see the module's docstring); returns how many
    calendars were queued to be judged again or read again, asked to sync, and events blanked.

    Privacy turned on blanks now and once more a sync's lease later (`again`): a sync reads the
    setting when it starts, so one under way when it changed may still store details of what changed.

    What the change owed (`follow_ups`: the settings named, or `BLANK_AGAIN`) is done when this
    returns; the calendar jobs it fans out to, and the second blanking (the sweep's alone, when it
    is due), are owed before that, so a broker outage loses none of them."""
    owed = starting(worker_runtime, *((name, organisation_id) for name in _owed_kinds(changed, again)))
    with transaction(worker_runtime.session_factory) as session:
        organisation = session.get(Organisation, organisation_id)
        busy_only = organisation is not None and organisation.calendar_busy_only
        calendar_ids = [] if organisation is None else calendar_settings.followed_calendars(session, organisation_id)
    if organisation is None:
        finished(worker_runtime, owed)
        return {}
    done = {"judged": 0, "reread": 0, "synced": 0, "blanked": 0}
    switched_off = BUSY_ONLY in changed and not busy_only
    blank = BUSY_ONLY in changed and busy_only
    if blank:
        done["blanked"] = blank_details(worker_runtime, organisation_id)
    # Judging needs the details (stored only while the privacy setting is off), and details wanted
    # back are only in the calendars: both read the calendars again.
    reread = busy_only or switched_off
    fan_out = calendar_ids if RULES in changed or switched_off else []
    with transaction(worker_runtime.session_factory) as session:
        kind = follow_ups.CALENDAR_REREAD if reread else follow_ups.CALENDAR_JUDGE
        follow_ups.record_many(session, kind, fan_out, organisation_id)
        if blank and not again:
            follow_ups.record(
                session, follow_ups.BLANK_AGAIN, organisation_id, organisation_id, due_in=calendars.SYNC_LEASE
            )
    for calendar_id in fan_out:
        _enqueue_calendar(worker_runtime.queue, calendar_id, reread)
    done["reread" if reread else "judged"] = len(fan_out)
    if WINDOW in changed and not done["reread"]:  # a re-read lists the whole window as it is then
        done["synced"] = _ask_syncs(worker_runtime, calendar_ids)
    finished(worker_runtime, owed)
    logger.info("organisation %d's calendar settings %s changed: %s", organisation_id, list(changed), done)
    return done


def _owed_kinds(changed: Sequence[str], again: bool) -> list[str]:
    """The follow-ups a `plan` for `changed` does."""
    return [follow_ups.BLANK_AGAIN] if again else [name for name in SETTINGS if name in changed]


def _enqueue_calendar(queue: Queue, calendar_id: int, reread: bool) -> None:
    """Queue a calendar's job, owed already (`CALENDAR_JUDGE` or `CALENDAR_REREAD`). Does not raise:
    the follow-up sweep queues it if this is lost."""
    try:
        queue.send(ActorName.REEVALUATE_CALENDAR, calendar_id, reread)
    except Exception:
        note_unsent(logger, "could not enqueue bringing calendar %d in line; the sweep will", calendar_id)


def _owe_reread(worker_runtime: Runtime, calendar_id: int) -> None:
    """Owe the calendar a re-read (its judging found the privacy setting on) and queue it."""
    with transaction(worker_runtime.session_factory) as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None:
            return
        follow_ups.record(session, follow_ups.CALENDAR_REREAD, calendar_id, calendar.organisation_id)
    _enqueue_calendar(worker_runtime.queue, calendar_id, True)


def _ask_syncs(worker_runtime: Runtime, calendar_ids: Sequence[int]) -> int:
    """Ask for a sync of each calendar (coalesced with requests waiting), `BATCH` a transaction."""
    asked = 0
    for start in range(0, len(calendar_ids), BATCH):
        with transaction(worker_runtime.session_factory) as session:
            wanted = [item for item in calendar_ids[start : start + BATCH] if calendars.request_sync(session, item)]
        for calendar_id in wanted:
            jobs.enqueue_sync(worker_runtime.queue, calendar_id)
        asked += len(wanted)
    return asked


def blank_details(worker_runtime: Runtime, organisation_id: int) -> int:
    """Blank the details of the organisation's stored events, `BATCH` a transaction, while the privacy
    setting is on (if it is turned off meanwhile the rest is left). Returns how many rows were written."""
    after_id, written = 0, 0
    while True:
        with transaction(worker_runtime.session_factory) as session:
            if not session.get_one(Organisation, organisation_id).calendar_busy_only:
                return written
            batch = calendar_settings.blank_details(session, organisation_id, after_id=after_id, limit=BATCH)
        if batch is None:
            return written
        after_id, count = batch
        written += count


def bring_in_line(worker_runtime: Runtime, calendar_id: int, *, reread: bool = False) -> None:
    """The `reevaluate_calendar` job: bring one calendar's stored events in line with the organisation's
    office rules (see `judge`, `reread_calendar`). Raises CalendarBusy while a sync holds the calendar,
    so that the queue tries again later."""
    if reread:
        if reread_calendar(worker_runtime, calendar_id) is None:
            raise CalendarBusy(f"calendar {calendar_id} is being synced; it is read again later")
    else:
        judge(worker_runtime, calendar_id)


def judge(worker_runtime: Runtime, calendar_id: int) -> engine.Tally:
    """Judge the calendar's stored events that have not started by the rules as they are now, and
    make, move or cancel their bookings; `BATCH` events a transaction. If the privacy setting was
    turned on meanwhile there is nothing left to judge by, and the calendar is read again instead.
    What the calendar was owed (`follow_ups.CALENDAR_JUDGE`) is done when this returns."""
    with owed(worker_runtime, (follow_ups.CALENDAR_JUDGE, calendar_id)):
        return _judge(worker_runtime, calendar_id)


def _judge(worker_runtime: Runtime, calendar_id: int) -> engine.Tally:
    tally = engine.Tally()
    now = utcnow()
    after_id = 0
    while True:
        with transaction(worker_runtime.session_factory) as session:
            keys = _lock(session, calendar_id)
            if keys is None:
                return tally  # gone (its person left, its connection stopped reading calendars)
            if keys.busy_only:
                break
            rows = calendar_settings.events_to_judge(
                session, calendar_id, after_id=after_id, starting_after=now, limit=BATCH
            )
            noted = len(tally.notes)
            _judge_rows(session, keys, rows, [office_day(row, keys.rules) for row in rows], tally)
            calendar_settings.add_notes(session, calendar_id, tally.notes[noted:])
        if len(rows) < BATCH:
            logger.info("judged calendar %d by the office rules again: %s", calendar_id, tally.counts)
            return tally
        after_id = rows[-1].id
    _owe_reread(worker_runtime, calendar_id)
    return tally


def _lock(session: Session, calendar_id: int) -> engine.Context | None:
    """Take the calendar's turn (the row lock a sync's page takes, PostgreSQL) and read its context."""
    if session.execute(select(Calendar.id).where(Calendar.id == calendar_id).with_for_update()).first() is None:
        return None
    return engine.Context.load(session, calendar_id)


def _judge_rows(
    session: Session,
    keys: engine.Context,
    rows: Sequence[ExternalEvent],
    offices: Sequence[str | None],
    tally: engine.Tally,
) -> None:
    """Bring each row's booking in line with its verdict (`offices`, in the rows' order)."""
    held = _bookings(session, rows)
    for row, office in zip(rows, offices, strict=True):
        if office is None and row.booking_id is None and row.booking_refused is None:
            continue  # no office day, and never was one
        booking = held.get(row.booking_id or 0)
        if office is not None and _in_line(row, booking, office):
            continue  # an office day still, booked as it says: nothing for `follow` to do but look
        if office is not None and _cancelled_by_hand(booking):
            continue  # someone cancelled this office day: new rules do not bring it back
        engine.follow(session, keys, row, office, tally)


def _bookings(session: Session, rows: Sequence[ExternalEvent]) -> dict[int, Booking]:
    """The bookings the rows hold, in one query (and in the session, where `follow` looks them up)."""
    ids = [row.booking_id for row in rows if row.booking_id is not None]
    if not ids:
        return {}
    return {booking.id: booking for booking in session.scalars(select(Booking).where(among(session, Booking.id, ids)))}


def _cancelled_by_hand(booking: Booking | None) -> bool:
    """Whether the event's booking was cancelled other than by the calendar (by its person, an admin)."""
    return (
        booking is not None
        and booking.status is BookingStatus.CANCELLED
        and booking.cancellation_reason != CANCELLED_BY_CALENDAR
    )


def _in_line(row: ExternalEvent, booking: Booking | None, office: str) -> bool:
    """Whether the event's booking is live, the calendar's, at its times and for its office or desk.

    Then new rules that still call the event an office day change nothing; skipping `follow` saves
    its three statements an event (a desk looked up by name among them) when most stay as they were.
    """
    return (
        booking is not None
        and booking.status in LIVE_STATUSES
        and booking.source == engine.SOURCE
        and (booking.start_at, booking.end_at, booking.details) == (row.start_at, row.end_at, office)
        and row.booking_refused is None
    )


def reread_calendar(worker_runtime: Runtime, calendar_id: int) -> engine.Tally | None:
    """Read the calendar's whole window again as a sync does (claimed, staged page by page, unlisted
    events removed, the new cursor kept), and also judge every listed event that has not started by
    the rules, changed or not; with the privacy setting off, details stored blank are written back
    first, without events. None when a sync holds the calendar. A connector's refusal is kept on the
    calendar as a sync keeps it; one that may pass raises ReadFailed (the queue tries again), one only an
    admin can fix returns (the office days wait for their events' next change). Unless it returns
    None or raises, what the calendar was owed (`follow_ups.CALENDAR_REREAD`) is done; when it does,
    the queue tries again, and the follow-up waits for its retries to end (`put_off`)."""
    owed = starting(worker_runtime, (follow_ups.CALENDAR_REREAD, calendar_id))
    try:
        tally = _reread(worker_runtime, calendar_id)
    except ReadFailed:
        put_off(worker_runtime, owed)
        raise
    if tally is None:
        put_off(worker_runtime, owed)
    else:
        finished(worker_runtime, owed)
    return tally


def _reread(worker_runtime: Runtime, calendar_id: int) -> engine.Tally | None:
    factory = worker_runtime.session_factory
    with transaction(factory) as session:
        if session.get(Calendar, calendar_id) is None:
            return engine.Tally()
        if not calendars.claim(session, calendar_id):
            return None
        calendar = session.get_one(Calendar, calendar_id)
        source = readers.source_of(session, worker_runtime.secret_box, calendar)
        start, end = calendars.window(session.get_one(Organisation, calendar.organisation_id))
        context = engine.Context.load(session, calendar_id)
    tally = engine.Tally()
    try:
        reader = readers.make_reader(source, worker_runtime.directory, worker_runtime.webhook_client)
        cursor, listed = _reread_round(worker_runtime, context, reader.read(None, Window(start, end)), tally)
        with transaction(factory) as session:
            engine.remove_unlisted(session, calendar_id, listed, start, end, tally)
            calendar = session.get_one(Calendar, calendar_id)
            external_events.forget_outside(session, calendar, start, end)
            calendars.finish(
                session, calendar, cursor=cursor, window_start=start.date(), counts=tally.counts, notes=tally.notes
            )
            if REGISTRY.can(source.kind, Capability.ONE_CALENDAR):
                feed = session.get_one(Connection, calendar.connection_id)
                connections.finish(session, feed, counts=tally.counts, notes=tally.notes, cursor=None)
    except ConnectorError as error:
        _fail(worker_runtime, calendar_id, error.message, action_required=error.action_required, notes=tally.notes)
        if not error.action_required:
            raise ReadFailed(error.message) from None
        return tally  # only an admin can fix it: the office days wait for the events' next change
    except UnsafeURL as error:
        message = f"ICS feed refused: {error}; enter a public address"
        _fail(worker_runtime, calendar_id, message, action_required=True, notes=tally.notes)
        return tally
    except Exception as error:
        _fail(worker_runtime, calendar_id, f"internal error: {type(error).__name__}; it is retried", notes=tally.notes)
        raise
    logger.info("read calendar %d again for its organisation's settings: %s", calendar_id, tally.counts)
    return tally


def _reread_round(
    worker_runtime: Runtime, context: engine.Context, pages: Iterable[CalendarPage], tally: engine.Tally
) -> tuple[str | None, set[str]]:
    """Stage every page of a full listing and judge its events; returns the cursor and the ids listed."""
    listed: set[str] = set()
    now = utcnow()
    for page in pages:
        with transaction(worker_runtime.session_factory) as session:
            if not context.busy_only:
                calendar_settings.bring_back_details(session, context.id, page.events)
            engine.apply_page(session, context.id, page, tally, context)
            _judge_records(session, context, page.events, now, tally)
        listed.update(event.event_id for event in page.events)
        if page.last:
            return page.cursor, listed
    raise ConnectorError("the calendar's listing ended before its last page; it is read again")


def _judge_records(
    session: Session,
    context: engine.Context,
    records: Iterable[CalendarEvent],
    now: datetime,
    tally: engine.Tally,
) -> None:
    """Judge listed events by their records (what the rules need even when it is not stored)."""
    latest = {record.event_id: record for record in records if record.booking_id is None and follows_rules(record)}
    if not latest:
        return
    rows = [
        row
        for row in session.scalars(
            select(ExternalEvent).where(
                ExternalEvent.calendar_id == context.id, among(session, ExternalEvent.event_id, list(latest))
            )
        )
        if row.start_at > now  # started: history, as in `judge`
    ]
    _judge_rows(session, context, rows, [office_day(latest[row.event_id], context.rules) for row in rows], tally)


def _fail(
    worker_runtime: Runtime, calendar_id: int, message: str, *, action_required: bool = False, notes: list[str]
) -> None:
    logger.warning("reading calendar %d again failed: %s", calendar_id, message)
    with transaction(worker_runtime.session_factory) as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None:
            return
        calendars.fail(session, calendar, message, action_required=action_required, notes=notes)
        connection = session.get_one(Connection, calendar.connection_id)
        if REGISTRY.can(connection.kind, Capability.ONE_CALENDAR):
            connections.fail(session, connection, message, action_required=action_required, notes=notes)
