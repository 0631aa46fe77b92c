"""A CSV file applied to a csv connection: the whole truth at once, or only its plan (kept, to apply later)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.records import DirectoryPage, DirectoryUser
from store.errors import Conflict
from store.models import Connection, SyncPlan
from store.services import connections
from store.services.connections import Scope
from sync.directory import engine, plans
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
    """Apply a CSV file's page to a csv connection in the caller's transaction, or only plan it
    (`plan_file`: the plan is kept, to apply as it is). Rows the scope leaves out for what the file
    says of them (no mailbox, a guest) are counted `skipped` with a note, not dropped unsaid.
    """
    if dry_run:
        return plan_file(session, connection, page, progress)[0]
    _check_kind(connection)
    savepoint = session.begin_nested()
    try:
        if not connections.claim(session, connection.id):
            raise Conflict("a sync of this connection is running; try again when it is done", code="sync_running")
        tally = engine.apply_now(session, connection.id, page, progress)
    except BaseException:
        savepoint.rollback()
        raise
    note_left_out(page.users, Scope.from_settings(connection.settings), tally)
    savepoint.commit()
    connections.finish(session, connection, counts=tally.counts, notes=tally.notes, cursor=connection.cursor)
    return tally


def plan_file(
    session: Session, connection: Connection, page: DirectoryPage, progress: engine.Progress | None = None
) -> tuple[engine.Tally, SyncPlan]:
    """Plan a CSV file's import and keep the plan (sync/directory/plans.py), changing nothing else:
    the plan is what the import would do, and applying it imports the file as planned. Returns it
    with what it says as a tally (counts, people by action, notes), the left-out rows included."""
    _check_kind(connection)
    plan = plans.make(session, connection.id, plans.Source([page], file=True), progress)
    tally = tally_of(plan)
    note_left_out(page.users, Scope.from_settings(connection.settings), tally)
    plan.notes = [*plan.notes, *tally.notes[len(plan.notes) :]]
    return tally, plan


def tally_of(plan: SyncPlan) -> engine.Tally:
    """What a stored plan says, as a sync's tally would: counts, the addresses by action, notes."""
    tally = engine.Tally(counts=dict(plan.counts))
    for action, items in plans.people_of(plan).items():
        tally.people[action] = [item["email"] for item in items]
    for text in plan.notes:
        tally.note(text)
    return tally


def _check_kind(connection: Connection) -> None:
    if not REGISTRY.can(connection.kind, Capability.TAKES_FILES):
        takers = " or ".join(sorted(REGISTRY.that(Capability.TAKES_FILES)))
        raise Conflict(
            f"connection {connection.id} is a {connection.kind.value} connection; only {takers} ones take files"
        )


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
