"""One sync of one connection: claim it, read its directory, apply, and say how it went."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.records import ConnectorError, DirectoryPage
from store.db import transaction
from store.models import Connection, ConnectionKind
from store.secret_box import UndecryptableSecret
from store.services import connections
from sync.directory import engine, readers
from worker import metrics
from worker.calendar import jobs as calendar_jobs
from worker.directory import jobs as directory_jobs
from worker.peers import sync as peer_sync
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of users read so far


def run(runtime: Runtime, connection_id: int, *, progress: Progress | None = None) -> engine.Tally | None:
    """Sync a connection now; None when another sync holds it (that one covers this request).

    A connector's refusal is kept on the connection (`error`, or `action_required` when only an
    admin can fix it) and not raised; anything else is recorded too and raised, so the queue retries.
    A sync asked for while this one ran (a notification) found it held and did nothing: it is queued
    again as this one ends (`_again_if_asked`), so a change mid-sync waits one sync, not the poll.
    """
    factory = runtime.session_factory
    with transaction(factory) as session:
        if not connections.claim(session, connection_id):
            logger.info("connection %d is being synced already", connection_id)
            return None
    try:
        return _claimed(runtime, connection_id, progress)
    finally:
        _again_if_asked(runtime, connection_id)


def _again_if_asked(runtime: Runtime, connection_id: int) -> None:
    """Queue the sync asked for while this one held the connection (its own job found it held)."""
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        asked = connection is not None and connection.sync_requested_at is not None
    if asked:
        directory_jobs.enqueue_sync(runtime.queue, connection_id)


def _claimed(runtime: Runtime, connection_id: int, progress: Progress | None) -> engine.Tally | None:
    factory = runtime.session_factory
    with transaction(factory) as session:
        connection = session.get_one(Connection, connection_id)
        kind, cursor = connection.kind, connection.cursor
        try:
            credentials: dict[str, Any] | None = connections.credentials(runtime.secret_box, connection)
        except UndecryptableSecret:
            credentials = None  # the claim is kept, and failed below with the reason
        settings = dict(connection.settings)
    if credentials is None:
        metrics.UNDECRYPTABLE.labels("connection_credentials").inc()
        # Admins must act (connection.action_required), yet the status stays error: the next poll tries
        # again, so fixing the key is enough.
        reason = UndecryptableSecret.reason("the connection's credentials")
        _fail(runtime, connection_id, kind, reason, True, keeps_polling=True)
        return None
    if REGISTRY.can(kind, Capability.PEER_PLATFORM):
        # People and everyone's events, read together (worker/peers); it keeps its own outcome.
        return peer_sync.run_claimed(runtime, connection_id, kind, settings, credentials, cursor)
    try:
        if REGISTRY.can(kind, Capability.DIRECTORY_PUSHED):
            # Pushed directories have nothing to read: a sync decides everyone again (after a scope change).
            with transaction(factory) as session:
                tally = engine.redecide_everyone(session, connection_id)
            new_cursor = cursor
        else:
            reader = readers.make(kind, settings, credentials, runtime.directory)
            tally, new_cursor = engine.apply_round(factory, connection_id, _counted(reader.read(cursor), progress))
    except ConnectorError as error:
        _fail(runtime, connection_id, kind, error.message, error.action_required)
        return None
    except Exception as error:
        _fail(runtime, connection_id, kind, f"internal error: {type(error).__name__}; it is retried", False)
        raise
    with transaction(factory) as session:
        connection = session.get_one(Connection, connection_id)
        connections.finish(session, connection, counts=tally.counts, notes=tally.notes, cursor=new_cursor)
    metrics.record_sync("directory", kind.value, "succeeded", tally.counts)
    logger.info("synced connection %d: %s", connection_id, _changed(tally.counts))
    _calendars_follow(runtime, connection_id)
    return tally


def _calendars_follow(runtime: Runtime, connection_id: int) -> None:
    """Who the connection covers may have changed: so may its people's calendars (never fails the sync)."""
    try:
        calendar_jobs.after_directory_sync(runtime, connection_id)
    except Exception:
        logger.exception("could not bring the calendars of connection %d in line; retried next sync", connection_id)


def _counted(pages: Iterable[DirectoryPage], progress: Progress | None) -> Iterator[DirectoryPage]:
    seen = 0
    for page in pages:
        yield page
        seen += len(page.users)
        if progress is not None:
            progress(seen)


def _changed(counts: dict[str, int]) -> dict[str, int] | str:
    """What a sync did, for its log line: the counts that moved, or that nothing did."""
    moved = {name: count for name, count in counts.items() if count and name != "seen"}
    return moved or f"nothing changed ({counts.get('seen', 0)} seen)"


def _fail(
    runtime: Runtime,
    connection_id: int,
    kind: ConnectionKind,
    message: str,
    action_required: bool,
    *,
    keeps_polling: bool = False,
) -> None:
    logger.warning("sync of connection %d failed: %s", connection_id, message)
    metrics.record_sync("directory", kind.value, "action_required" if action_required else "error")
    with transaction(runtime.session_factory) as session:
        connection = session.get_one(Connection, connection_id)
        connections.fail(
            session, connection, message, action_required=action_required, notes=[], keeps_polling=keeps_polling
        )
