"""A CSV file applied to a csv connection: the whole truth at once, or only its plan."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.records import DirectoryPage, DirectoryUser
from store.errors import Conflict
from store.models import Connection
from store.services import connections
from store.services.connections import Scope
from sync.directory import engine
from sync.directory.scope import address

SHOWN = 5  # people named in a note; the plan's `skipped` list has them all


def import_page(
    session: Session,
    connection: Connection,
    page: DirectoryPage,
    *,
    dry_run: bool,
    progress: engine.Progress | None = None,
) -> engine.Tally:
    """Apply a CSV file's page to a csv connection in the caller's transaction, or only plan it.

    A dry run does the real work in a savepoint and rolls it back: the plan is exactly what an
    import would do, and no row, event or email is left behind. Rows the scope leaves out for what
    the file says of them (no mailbox, a guest) are counted `skipped` with a note, not dropped unsaid.
    """
    if not REGISTRY.can(connection.kind, Capability.TAKES_FILES):
        takers = " or ".join(sorted(REGISTRY.that(Capability.TAKES_FILES)))
        raise Conflict(
            f"connection {connection.id} is a {connection.kind.value} connection; only {takers} ones take files"
        )
    savepoint = session.begin_nested()
    try:
        if not connections.claim(session, connection.id):
            raise Conflict("a sync of this connection is running; try again when it is done", code="sync_running")
        tally = engine.apply_now(session, connection.id, page, progress)
    except BaseException:
        savepoint.rollback()
        raise
    note_left_out(page.users, Scope.from_settings(connection.settings), tally)
    if dry_run:
        savepoint.rollback()
        return tally
    savepoint.commit()
    connections.finish(session, connection, counts=tally.counts, notes=tally.notes, cursor=connection.cursor)
    return tally


def note_left_out(users: Sequence[DirectoryUser], scope: Scope, tally: engine.Tally) -> None:
    """Count and note the active accounts the scope leaves out for what the file says: no mailbox, a guest."""
    active = [user for user in users if user.active]
    without = [user.username for user in active if address(user, scope) is None]
    guests = [user.username for user in active if user.guest and not scope.include_guests and address(user, scope)]
    for who in without + guests:
        tally.count("skipped", who=who)
    if without:
        tally.note(
            f"{_some(without)} skipped: no mailbox (the file gives no email address); the scope's "
            "include_without_mailbox brings such accounts in by their sign-in name"
        )
    if guests:
        tally.note(f"{_some(guests)} skipped: guest accounts; the scope's include_guests brings them in")


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return f"{len(names)} account(s) ({shown}{more})"
