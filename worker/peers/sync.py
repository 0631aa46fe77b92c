"""One sync of a peer connection (When I Work, Kadence, Resource Guru): people, desks, then events.

The directory sync claims the connection and hands peer kinds here (`run_claimed`). People are a
directory round through the directory engine (members invited, renamed, removed as for any
directory); Kadence desks are imported when the settings say `import_desks`; then everyone's events
of the window go into each person's calendar (events.py). The connection keeps the round's counts
and notes (`connection.synced`), or the admin-readable reason it failed (`connection.failed`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from connectors.kadence import Kadence
from connectors.records import ConnectorError
from connectors.resourceguru import TokenPair
from store.db import transaction
from store.models import Connection, ConnectionKind
from store.services import connections
from sync.calendar import engine as calendar_engine
from sync.directory import engine
from sync.peers import desks, events, readers
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def run_claimed(
    runtime: Runtime,
    connection_id: int,
    kind: ConnectionKind,
    settings: dict[str, Any],
    credentials: dict[str, Any],
    cursor: str | None,
) -> engine.Tally | None:
    """Sync a peer connection the caller has claimed; the connector's refusal is kept, not raised."""
    factory = runtime.session_factory
    try:
        reader = readers.make(
            kind, settings, credentials, runtime.directory, on_refresh=token_saver(runtime, connection_id)
        )
        tally, new_cursor = engine.apply_round(factory, connection_id, reader.people(cursor))
        if settings.get("import_desks") and isinstance(reader, Kadence):
            tally.count("desks_imported", desks.import_desks(factory, connection_id, reader.desks()))
        happened = calendar_engine.Tally()
        events.sync(factory, connection_id, reader, happened)
    except ConnectorError as error:
        _fail(runtime, connection_id, error.message, action_required=error.action_required)
        return None
    except Exception as error:
        _fail(runtime, connection_id, f"internal error: {type(error).__name__}; it is retried", action_required=False)
        raise
    counts = {**tally.counts, **{f"events_{name}": value for name, value in happened.counts.items()}}
    with transaction(factory) as session:
        connection = session.get_one(Connection, connection_id)
        connections.finish(session, connection, counts=counts, notes=[*tally.notes, *happened.notes], cursor=new_cursor)
    logger.info("synced peer connection %d: %s", connection_id, counts)
    return tally


def token_saver(runtime: Runtime, connection_id: int) -> readers.SaveTokens:
    """Stores a refreshed Resource Guru pair, encrypted, in its own transaction: committed before it is used.

    The refresh spent the old refresh token, so a pair that is not stored would cost a reconnect.
    """

    def save(pair: TokenPair) -> None:
        with transaction(runtime.session_factory) as session:
            connection = session.get_one(Connection, connection_id)
            stored = connections.credentials(runtime.secret_box, connection)
            stored.update(readers.pair_credentials(pair))
            connection.credentials_encrypted = runtime.secret_box.encrypt(json.dumps(stored))

    return save


def _fail(runtime: Runtime, connection_id: int, message: str, *, action_required: bool) -> None:
    logger.warning("sync of peer connection %d failed: %s", connection_id, message)
    with transaction(runtime.session_factory) as session:
        connection = session.get_one(Connection, connection_id)
        connections.fail(session, connection, message, action_required=action_required, notes=[])
