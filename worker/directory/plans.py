"""Reading a connection's directory for a plan (sync/directory/plans.py), with the readers a sync uses."""

from __future__ import annotations

from typing import Any

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.records import ConnectorError
from store.db import transaction
from store.errors import Conflict
from store.models import Connection
from store.secret_box import UndecryptableSecret
from store.services import connections
from sync.directory import readers
from sync.directory.plans import Source
from sync.peers import readers as peer_readers
from worker.peers.sync import token_saver
from worker.runtime import Runtime


def read(runtime: Runtime, connection_id: int) -> Source:
    """What a sync of the connection would read now, whole, from its cursor: its directory's pages (a peer
    platform's people), or nothing for a pushed directory (its sync decides everyone again). A directory
    that refuses, or credentials no key opens, is a Conflict with the reason an admin can act on."""
    with transaction(runtime.session_factory) as session:
        connection = session.get_one(Connection, connection_id)
        kind, cursor, settings = connection.kind, connection.cursor, dict(connection.settings)
        if REGISTRY.can(kind, Capability.DIRECTORY_PUSHED):
            return Source()
        if not (REGISTRY.can(kind, Capability.READS_DIRECTORY) or REGISTRY.can(kind, Capability.PEER_PLATFORM)):
            raise Conflict(f"a {kind.value} connection has no directory to plan", code="no_directory")
        try:
            credentials: dict[str, Any] = connections.credentials(runtime.secret_box, connection)
        except UndecryptableSecret:
            raise Conflict(
                UndecryptableSecret.reason("the connection's credentials"), code="directory_refused"
            ) from None
    try:
        if REGISTRY.can(kind, Capability.PEER_PLATFORM):
            people = peer_readers.make(
                kind, settings, credentials, runtime.directory, on_refresh=token_saver(runtime, connection_id)
            )
            return Source(list(people.people(cursor)))
        return Source(list(readers.make(kind, settings, credentials, runtime.directory).read(cursor)))
    except ConnectorError as error:
        raise Conflict(f"the directory refused: {error.message}", code="directory_refused") from None
