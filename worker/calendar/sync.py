"""One sync of one calendar: claim it, read the window, apply each page, and say how it went.

The window is the organisation's (`calendars.window`: whole UTC days, from a day back to N days
ahead). Each page is applied in its own transaction, so a long first listing holds no lock for long
and a round cut short keeps what it applied; the cursor is kept only once the round completes, so
the next round reads again whatever this one did not finish (applying a page twice changes nothing).
After a complete listing, stored events of the window it did not list are gone; events that ended
before the window (time moved on), or start after it (it was shortened), are forgotten without an
event: nothing changed in the calendar.

An ICS feed is a connection of its own, so its connection shows how the last read went too
(`connection.synced` / `connection.failed`); a person's Outlook or Google calendar is one of many of
its connection, whose status stays the directory's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.outbound import UnsafeURL
from connectors.records import CalendarPage, ConnectorError, Window
from store.db import transaction
from store.models import Calendar, Connection, Organisation
from store.secret_box import UndecryptableSecret
from store.services import calendars, connections, external_events
from sync.calendar import engine, readers
from worker import metrics
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def run(runtime: Runtime, calendar_id: int) -> engine.Tally | None:
    """Sync a calendar now; None when another sync holds it, it is gone, or the source refused.

    A connector's refusal is kept on the calendar (`error`, or `action_required` when only an admin
    can fix it) and not raised; anything else is recorded too and raised, so the queue retries.
    """
    factory = runtime.session_factory
    with transaction(factory) as session:
        if not calendars.claim(session, calendar_id):
            logger.info("calendar %d is being synced already (or is gone)", calendar_id)
            return None
        calendar = session.get_one(Calendar, calendar_id)
        try:
            source = readers.source_of(session, runtime.secret_box, calendar)
        except UndecryptableSecret:
            source = None  # the claim is kept, and failed below with the reason
        start, end = calendars.window(session.get_one(Organisation, calendar.organisation_id))
        cursor = calendar.cursor
        context = engine.Context.load(session, calendar_id)
    tally = engine.Tally()
    if source is None:
        metrics.UNDECRYPTABLE.labels("connection_credentials").inc()
        # An error, not action_required: the next poll tries again, so fixing the key is enough (an ICS
        # feed's or CalDAV account's connection still tells admins they must act).
        fail(
            runtime,
            calendar_id,
            UndecryptableSecret.reason("the connection's credentials"),
            False,
            [],
            undecryptable=True,
        )
        return None
    try:
        reader = readers.make_reader(source, runtime.directory, runtime.webhook_client)
        pages = reader.read(cursor, Window(start, end))
        new_cursor, listed = apply_round(runtime, calendar_id, pages, tally, context)
        complete(runtime, calendar_id, source.kind, new_cursor, listed, (start, end), tally)
    except ConnectorError as error:
        fail(runtime, calendar_id, error.message, error.action_required, tally.notes, source.kind)
        return None
    except UnsafeURL as error:
        # The feed's host resolves to an address the worker may not call (a private network).
        message = f"ICS feed refused: {error}; enter a public address"
        fail(runtime, calendar_id, message, True, tally.notes, source.kind)
        return None
    except Exception as error:
        message = f"internal error: {type(error).__name__}; it is retried"
        fail(runtime, calendar_id, message, False, tally.notes, source.kind)
        raise
    metrics.record_sync("calendar", source.kind, "succeeded", tally.counts)
    logger.info("synced calendar %d: %s", calendar_id, tally.counts)
    return tally


def apply_round(
    runtime: Runtime, calendar_id: int, pages: Iterable[CalendarPage], tally: engine.Tally, context: engine.Context
) -> tuple[str | None, set[str] | None]:
    """Apply every page, each in its own transaction; returns the round's cursor and, after a complete
    listing, the ids it listed."""
    listed: set[str] = set()
    full = False
    for page in pages:
        with transaction(runtime.session_factory) as session:
            engine.apply_page(session, calendar_id, page, tally, context)
        if page.full:
            # A round may turn full part-way (a 410): what came before is listed again in full.
            full = True
            listed.update(event.event_id for event in page.events)
        if page.last:
            return page.cursor, listed if full else None
    raise ConnectorError("the calendar's listing ended before its last page; it is read again")


def complete(
    runtime: Runtime,
    calendar_id: int,
    kind: str,
    cursor: str | None,
    listed: set[str] | None,
    window: tuple[datetime, datetime],
    tally: engine.Tally,
) -> None:
    """A round was applied whole: drop what a complete listing left out and what lies outside the
    window, and keep the cursor (one transaction)."""
    start, end = window
    with transaction(runtime.session_factory) as session:
        if listed is not None:
            engine.remove_unlisted(session, calendar_id, listed, start, end, tally)
        calendar = session.get_one(Calendar, calendar_id)
        external_events.forget_outside(session, calendar, start, end)
        calendars.finish(
            session, calendar, cursor=cursor, window_start=start.date(), counts=tally.counts, notes=tally.notes
        )
        if REGISTRY.can(kind, Capability.ONE_CALENDAR):
            feed = session.get_one(Connection, calendar.connection_id)
            connections.finish(session, feed, counts=tally.counts, notes=tally.notes, cursor=None)


def fail(
    runtime: Runtime,
    calendar_id: int,
    message: str,
    action_required: bool,
    notes: list[str],
    kind: str | None = None,
    *,
    undecryptable: bool = False,
) -> None:
    """Keep why a sync failed on the calendar (and on an ICS feed's connection), in a transaction of its own;
    counted by `kind` (the calendar's connection kind, when known). `undecryptable`: the credentials could
    not be read, which the connection says needs an admin while it keeps polling."""
    logger.warning("sync of calendar %d failed: %s", calendar_id, message)
    outcome = "action_required" if action_required else "error"
    metrics.record_sync("calendar", str(kind) if kind is not None else "unknown", outcome)
    with transaction(runtime.session_factory) as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None:
            return  # gone meanwhile (its person left): nothing to report on
        calendars.fail(session, calendar, message, action_required=action_required, notes=notes)
        connection = session.get_one(Connection, calendar.connection_id)
        if REGISTRY.can(connection.kind, Capability.ONE_CALENDAR):
            connections.fail(
                session,
                connection,
                message,
                action_required=action_required or undecryptable,
                notes=notes,
                keeps_polling=undecryptable,
            )
