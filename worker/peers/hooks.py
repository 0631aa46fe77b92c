"""Resource Guru webhook deliveries, applied (the `apply_envelopes` job, declared in worker/actors.py).

The API kept each verified delivery (once per envelope id) and asked for `apply_envelopes` of its
connection, one waiting job per connection however many deliveries arrive (worker/coalesce.py). The
job drains the connection's waiting deliveries, oldest envelope first, `BATCH` to a transaction,
one job at a time per connection (`peer_envelopes.waiting`), each read against who is who (the
roster, kept a minute: rosters.py). Each delivery carries its object whole, so of several about one
object only the newest is applied (the others are superseded), and the batch's deliveries are
applied together, calendar by calendar. A delivery is applied whole or not at all, and once: each is
marked done in the transaction that applies it. A delivery that cannot be read or applied is marked
done with the reason, and the connection shows it (`connection.failed`), so one bad delivery never
holds up the ones after it; the reconciling poll (every calendar interval) brings in anything a lost
or refused delivery carried.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
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
from connectors.resourceguru.webhooks import Record
from infra.redis_client import note_unsent
from store.db import transaction
from store.models import Calendar, Connection, ExternalEvent, PeerEnvelope
from store.services import calendars, connections, peer_envelopes
from sync.calendar import engine as calendar_engine
from sync.directory import engine
from sync.peers import events, readers, rosters
from worker import coalesce
from worker.peers import sync
from worker.queue import ActorName, Queue
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

BATCH = 100  # deliveries applied in one transaction
_WAITING_KEY = "deskbridge:resourceguru-waiting:{}"


def enqueue(queue: Queue, connection_id: int) -> None:
    """Ask for the connection's kept deliveries to be applied. Does not raise: the next delivery asks
    again, and the reconciling poll brings the same state in regardless."""
    try:
        key = _WAITING_KEY.format(connection_id)
        coalesce.send_unless_waiting(queue, ActorName.APPLY_ENVELOPES, key, connection_id)
    except Exception:
        note_unsent(logger, "could not enqueue Resource Guru deliveries of connection %d", connection_id)


def apply_waiting(worker_runtime: Runtime, connection_id: int) -> Counter[str]:
    """The `apply_envelopes` job: from now on a delivery asks for another job, then every delivery of
    the connection still waiting is applied (nothing when there is none)."""
    coalesce.starting(worker_runtime.queue.broker, _WAITING_KEY.format(connection_id))
    return drain(worker_runtime, connection_id)


def drain(worker_runtime: Runtime, connection_id: int) -> Counter[str]:
    """Apply the connection's waiting deliveries, oldest first; how many ended how (see `apply`).

    Resource Guru unreachable or refusing raises: the job is retried, and the deliveries wait meanwhile.
    """
    outcomes: Counter[str] = Counter()
    while True:
        done = _apply_batch(worker_runtime, connection_id)
        outcomes.update(done)
        if not done:
            return outcomes


def apply(worker_runtime: Runtime, row_id: int) -> str:
    """Apply one kept delivery; returns applied, done (before), superseded (out of order) or refused
    (unreadable, or failed to apply)."""
    with transaction(worker_runtime.session_factory) as session:
        row = session.get(PeerEnvelope, row_id)
        if row is None or row.applied_at is not None:
            return "done"
        connection_id = row.connection_id
    done = _apply_batch(worker_runtime, connection_id, only=row_id)
    return done[0] if done else "done"


@dataclass(frozen=True)
class _Source:
    settings: dict[str, Any]
    credentials: dict[str, Any]


def _apply_batch(worker_runtime: Runtime, connection_id: int, *, only: int | None = None) -> list[str]:
    """Apply up to BATCH waiting deliveries in one transaction; their outcomes (empty: none waited)."""
    factory = worker_runtime.session_factory
    with transaction(factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None:
            return []
        source = _Source(dict(connection.settings), connections.credentials(worker_runtime.secret_box, connection))
    roster = _roster(worker_runtime, connection_id, source)
    window = events.window_of(factory, connection_id)
    with transaction(factory) as session:
        rows = peer_envelopes.waiting(session, connection_id, BATCH, only=only)
        return _apply_rows(session, connection_id, rows, roster, window)


def _apply_rows(
    session: Session, connection_id: int, rows: list[PeerEnvelope], roster: Roster, window: Window
) -> list[str]:
    """Apply deliveries in envelope order. A delivery about a resource changes who is who: it is applied
    on its own, and ends the batch (the next one reads the roster again), as does reaching one."""
    outcomes: list[str] = []
    readable: list[tuple[PeerEnvelope, Envelope]] = []
    for row in rows:
        try:
            envelope = parse(row.body, roster)
        except ValueError as error:
            outcomes.append(_refuse(session, row, str(error)))
            continue
        if envelope.type == "resource":
            if readable:
                break  # the next batch starts with it, after what came before it is applied
            outcomes.append(_apply_alone(session, row, envelope, window))
            rosters.ROSTERS.forget(connection_id)
            return outcomes
        readable.append((row, envelope))
    return outcomes + _apply_together(session, connection_id, readable, window)


def _apply_together(
    session: Session, connection_id: int, pairs: list[tuple[PeerEnvelope, Envelope]], window: Window
) -> list[str]:
    """Apply the newest delivery about each object in one go; the older ones are superseded by it.

    Each delivery carries its object whole, so the newest one says all the older ones would. Should
    applying them together fail, they are applied one by one, so only the culprit is refused.
    """
    newest = peer_envelopes.latest_applied(session, connection_id, {row.subject for row, _ in pairs if row.subject})
    for row, _ in pairs:
        if row.subject:
            newest[row.subject] = max(newest.get(row.subject, 0), row.envelope_id)
    outcomes: list[str] = []
    chosen: list[tuple[PeerEnvelope, Envelope]] = []
    for row, envelope in pairs:
        if row.subject and newest[row.subject] > row.envelope_id:
            peer_envelopes.applied(row, error="superseded: a later delivery about the same object was applied")
            outcomes.append("superseded")
        else:
            chosen.append((row, envelope))
    try:
        with session.begin_nested():
            apply_records(session, connection_id, [item for _, envelope in chosen for item in envelope.payload], window)
    except OperationalError:
        raise  # the database, not the deliveries: the job is retried
    except Exception:
        logger.warning("%d Resource Guru deliveries failed together; applying them one by one", len(chosen))
        return outcomes + [_apply_alone(session, row, envelope, window) for row, envelope in chosen]
    for row, _ in chosen:
        peer_envelopes.applied(row)
    return outcomes + ["applied"] * len(chosen)


def _apply_alone(session: Session, row: PeerEnvelope, envelope: Envelope, window: Window) -> str:
    """Apply one delivery in its own savepoint; refused (and said on the connection) when it fails."""
    try:
        with session.begin_nested():
            apply_records(session, row.connection_id, envelope.payload, window)
    except OperationalError:
        raise
    except Exception as error:
        logger.exception("Resource Guru delivery %d (envelope %d) could not be applied", row.id, row.envelope_id)
        return _refuse(session, row, f"it could not be applied ({type(error).__name__})")
    peer_envelopes.applied(row)
    return "applied"


def _roster(worker_runtime: Runtime, connection_id: int, source: _Source) -> Roster:
    saver = sync.token_saver(worker_runtime, connection_id)

    def read_roster() -> Roster:
        # Built only when the kept roster is stale: a client (and its TLS set-up) per batch would
        # cost more than applying it.
        reader = readers.make_resourceguru(
            source.settings, source.credentials, worker_runtime.directory, on_refresh=saver
        )
        return reader.roster()

    try:
        return rosters.ROSTERS.get(connection_id, read_roster)
    except ConnectorError as error:
        logger.warning("Resource Guru deliveries of connection %d wait: %s", connection_id, error.message)
        raise


def apply_records(session: Session, connection_id: int, payload: Sequence[Record], window: Window) -> None:
    """Deliveries' records into the store: people through the directory engine, events into calendars."""
    users = tuple(item for item in payload if isinstance(item, DirectoryUser))
    gone = tuple(item for item in payload if isinstance(item, RemovedUser))
    if users or gone:
        engine.apply_now(session, connection_id, DirectoryPage(users=users, removed=gone))
        calendars.ensure(session, session.get_one(Connection, connection_id))
    found = [item for item in payload if isinstance(item, PersonEvent)]
    removed = {item.event_id for item in payload if isinstance(item, RemovedEvent)}
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


def _refuse(session: Session, row: PeerEnvelope, reason: str) -> str:
    message = f"a Resource Guru webhook could not be read and was not applied: {reason}"
    logger.warning("connection %d: %s", row.connection_id, message)
    peer_envelopes.applied(row, error=reason)
    peer_envelopes.refuse(session, session.get_one(Connection, row.connection_id), message)
    return "refused"
