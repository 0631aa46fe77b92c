"""Resource Guru webhook deliveries, applied. Import only after the broker is set (see worker.broker).

The API kept the delivery (verified, once per envelope id) and queued `apply_envelope`. Here it is
read against who is who (the roster, kept a minute: rosters.py), and applied in one transaction with the
delivery marked done, so a delivery is applied whole or not at all, and once: a redelivered job
finds it done. A delivery that cannot be read is marked done with the reason, and the connection
shows it (`connection.failed`); the reconciling poll (every calendar interval) brings in anything a
lost or refused delivery carried.
"""

from __future__ import annotations

import logging

import dramatiq
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.records import (
    ConnectorError,
    DirectoryPage,
    DirectoryUser,
    PersonEvent,
    RemovedEvent,
    RemovedUser,
    Window,
)
from connectors.resourceguru import Envelope, Roster, parse
from store.db import transaction
from store.models import Calendar, Connection, ExternalEvent, PeerEnvelope
from store.services import calendars, connections, peer_envelopes
from worker import runtime
from worker.calendar import engine as calendar_engine
from worker.directory import engine
from worker.peers import events, readers, rosters, sync
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def enqueue(row_id: int) -> None:
    """Queue applying a kept delivery. Does not raise: the reconciling poll covers a lost job."""
    try:
        apply_envelope.send(row_id)
    except Exception:
        logger.warning("could not enqueue Resource Guru delivery %d; the next poll reconciles", row_id, exc_info=True)


@dramatiq.actor(queue_name="directory", max_retries=3, min_backoff=5_000, max_backoff=300_000)
def apply_envelope(row_id: int) -> None:
    """Apply one kept delivery (nothing when it is done already)."""
    apply(runtime.current(), row_id)


def apply(worker_runtime: Runtime, row_id: int) -> str:
    """Apply a kept delivery; returns applied, done (before), superseded (out of order) or refused
    (unreadable). Resource Guru
    unreachable or refusing raises: the job is retried, and the delivery waits meanwhile."""
    factory = worker_runtime.session_factory
    with transaction(factory) as session:
        row = session.get(PeerEnvelope, row_id)
        if row is None or row.applied_at is not None:
            return "done"
        connection = session.get_one(Connection, row.connection_id)
        connection_id, body = connection.id, row.body
        settings = dict(connection.settings)
        credentials = connections.credentials(worker_runtime.secret_box, connection)
    saver = sync.token_saver(worker_runtime, connection_id)

    def read_roster() -> Roster:
        # Built only when the kept roster is stale: a client (and its TLS set-up) per delivery would
        # cost more than applying it.
        reader = readers.make_resourceguru(settings, credentials, worker_runtime.directory, on_refresh=saver)
        return reader.roster()

    try:
        roster = rosters.ROSTERS.get(connection_id, read_roster)
    except ConnectorError as error:
        # The delivery stays to be applied by a retry of the job; the reconciling poll brings the
        # same state in regardless.
        logger.warning("Resource Guru delivery %d waits: %s", row_id, error.message)
        raise
    try:
        envelope = parse(body, roster)
    except ValueError as error:
        return _refused(worker_runtime, row_id, connection_id, str(error))
    window = events.window_of(factory, connection_id)
    with transaction(factory) as session:
        row = peer_envelopes.pending(session, row_id)
        if row is None:
            return "done"  # applied by a job running alongside
        if peer_envelopes.superseded(session, row):
            peer_envelopes.applied(row, error="superseded: a later delivery about the same object was applied")
            return "superseded"
        apply_records(session, connection_id, envelope, window)
        peer_envelopes.applied(row)
    if envelope.type == "resource":
        rosters.ROSTERS.forget(connection_id)  # who is who changed: the next delivery reads it again
    return "applied"


def apply_records(session: Session, connection_id: int, envelope: Envelope, window: Window) -> None:
    """The envelope's records into the store: people through the directory engine, events into calendars."""
    users = tuple(item for item in envelope.payload if isinstance(item, DirectoryUser))
    gone = tuple(item for item in envelope.payload if isinstance(item, RemovedUser))
    if users or gone:
        engine.apply_now(session, connection_id, DirectoryPage(users=users, removed=gone))
        calendars.ensure(session, session.get_one(Connection, connection_id))
    found = [item for item in envelope.payload if isinstance(item, PersonEvent)]
    removed = {item.event_id for item in envelope.payload if isinstance(item, RemovedEvent)}
    if not found and not removed:
        return
    rows = session.execute(select(Calendar.address, Calendar.id).where(Calendar.connection_id == connection_id))
    by_person = {address.lower(): calendar_id for address, calendar_id in rows}
    wanted: dict[int, list[PersonEvent]] = {}
    for item in found:
        calendar_id = by_person.get(item.person.lower())
        if calendar_id is not None and item.event.start < window.end and item.event.end > window.start:
            wanted.setdefault(calendar_id, []).append(item)
    event_ids = removed | {item.event.event_id for item in found}
    # Whoever held one of these events and is not among the people it is for now no longer has it.
    leaving: dict[int, list[RemovedEvent]] = {}
    for event_id, calendar_id in _holders(session, connection_id, event_ids):
        if not any(item.event.event_id == event_id for item in wanted.get(calendar_id, [])):
            leaving.setdefault(calendar_id, []).append(RemovedEvent(event_id))
    tally = calendar_engine.Tally()
    for calendar_id in sorted(set(wanted) | set(leaving)):
        events.apply_calendar(
            session,
            calendar_id,
            wanted.get(calendar_id, []),
            window,
            tally,
            full=False,
            removed=leaving.get(calendar_id, ()),
        )


def _holders(session: Session, connection_id: int, event_ids: set[str]) -> list[tuple[str, int]]:
    rows = session.execute(
        select(ExternalEvent.event_id, ExternalEvent.calendar_id)
        .join(Calendar, Calendar.id == ExternalEvent.calendar_id)
        .where(Calendar.connection_id == connection_id, ExternalEvent.event_id.in_(sorted(event_ids)))
    )
    return [(event_id, calendar_id) for event_id, calendar_id in rows]


def _refused(worker_runtime: Runtime, row_id: int, connection_id: int, reason: str) -> str:
    message = f"a Resource Guru webhook could not be read and was not applied: {reason}"
    logger.warning("connection %d: %s", connection_id, message)
    with transaction(worker_runtime.session_factory) as session:
        row = peer_envelopes.pending(session, row_id)
        if row is None:
            return "done"
        peer_envelopes.applied(row, error=reason)
        peer_envelopes.refuse(session, session.get_one(Connection, connection_id), message)
    return "refused"
