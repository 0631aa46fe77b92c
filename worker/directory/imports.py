"""A CSV file applied to a csv connection: the whole truth at once, or only its plan."""

from __future__ import annotations

from sqlalchemy.orm import Session

from connectors.records import DirectoryPage
from store.errors import Conflict
from store.models import Connection, ConnectionKind
from store.services import connections
from worker.directory import engine


def import_page(session: Session, connection: Connection, page: DirectoryPage, *, dry_run: bool) -> engine.Tally:
    """Apply a CSV file's page to a csv connection in the caller's transaction, or only plan it.

    A dry run does the real work in a savepoint and rolls it back: the plan is exactly what an
    import would do, and no row, event or email is left behind.
    """
    if connection.kind is not ConnectionKind.CSV:
        raise Conflict(f"connection {connection.id} is a {connection.kind.value} connection; only csv ones take files")
    savepoint = session.begin_nested()
    try:
        if not connections.claim(session, connection.id):
            raise Conflict("a sync of this connection is running; try again when it is done", code="sync_running")
        tally = engine.apply_now(session, connection.id, page)
    except BaseException:
        savepoint.rollback()
        raise
    if dry_run:
        savepoint.rollback()
        return tally
    savepoint.commit()
    connections.finish(session, connection, counts=tally.counts, notes=tally.notes, cursor=connection.cursor)
    return tally
