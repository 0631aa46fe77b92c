"""`deskbridge plan`: read, apply (approve) and reject a connection's sync plans; `deskbridge sync ID --plan`
makes one. A plan is what a sync would do (sync/directory/plans.py), kept for an hour; a held plan
holds removals a sync would have made past the connection's removal limit, for an admin to decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from deskbridge.commands.common import OrgOption, fail, organisation, out
from deskbridge.settings import get_settings
from store.errors import StoreError
from store.models import SyncPlan
from store.services import connections
from store.services import plans as stored
from sync.directory import plans

app = typer.Typer(help="Read, apply or reject a connection's sync plans (`deskbridge sync ID --plan` makes one).")

ConnectionArg = Annotated[int, typer.Argument(help="The connection's id.")]
PlanArg = Annotated[str, typer.Argument(help="The plan's id (plan_…).")]
ACTIONS = ("invited", "added", "restored", "linked", "updated", "removed", "kept", "skipped")
T = TypeVar("T")


@contextmanager
def _wired() -> Iterator[tuple[Session, plans.Read]]:
    """A session of the wired store (its commits feed the worker, as the API's do) and the directory reader."""
    from functools import partial

    from deskbridge.wiring import build
    from worker import runtime
    from worker.directory import plans as directory_plans

    components = build(get_settings())
    try:
        with components.session_factory() as session:
            try:
                yield session, partial(directory_plans.read, runtime.current())
            except StoreError as error:
                session.rollback()
                fail(error.message)
    finally:
        components.engine.dispose()


def _in(org: str | None, connection_id: int, work: Callable[[Session, int, plans.Read], T]) -> T:
    with _wired() as (session, read):
        organisation_id = organisation(session, org).id
        connections.get(session, organisation_id, connection_id)
        return work(session, organisation_id, read)


def make(connection_id: int, org: str | None) -> None:
    """`deskbridge sync ID --plan`: read the directory and print what a sync would do, changing nothing."""
    with _wired() as (session, read):
        connection = connections.get(session, organisation(session, org).id, connection_id)
        plan = plans.make_now(session, connection.id, read)
        show_plan(plan, f"Plan of a sync of {connection.name!r} (nothing was changed):")
        out().print(
            f"Apply it within the hour with `deskbridge plan apply {connection_id} {plan.public_id}`.",
            markup=False,
            soft_wrap=True,
        )


@app.command("show")
def show(connection_id: ConnectionArg, plan_id: PlanArg, org: OrgOption = None) -> None:
    """Print a plan: who it invites, links, updates, removes (with the bookings that cancels), its teams."""

    def work(session: Session, organisation_id: int, _read: plans.Read) -> None:
        show_plan(stored.get(session, organisation_id, connection_id, plan_id), f"Plan {plan_id}:")

    _in(org, connection_id, work)


@app.command("apply")
def apply(connection_id: ConnectionArg, plan_id: PlanArg, org: OrgOption = None) -> None:
    """Apply a plan exactly as it was made (a held plan: approve its removals); if the directory moved on,
    nothing changes and the fresh plan is printed instead (exit status 1)."""

    def work(session: Session, organisation_id: int, read: plans.Read) -> plans.Outcome:
        return plans.apply_now(session, organisation_id, connection_id, plan_id, read)

    outcome = _in(org, connection_id, work)
    if outcome.applied:
        done = ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in outcome.tally.counts.items() if count)
        out().print(f"Applied {plan_id}: {done or 'nothing to do'}.", markup=False, soft_wrap=True)
        return
    if outcome.fresh is not None:
        show_plan(outcome.fresh, f"The directory moved on since {plan_id}; nothing was applied. The fresh plan:")
        fail(f"read it, then `deskbridge plan apply {connection_id} {outcome.fresh.public_id}`.")
    fail(f"none of the removals {plan_id} held stands any more; nothing was applied.")


@app.command("reject")
def reject(connection_id: ConnectionArg, plan_id: PlanArg, org: OrgOption = None) -> None:
    """Keep the people a held plan would remove: not proposed again until the directory changes them."""

    def work(session: Session, organisation_id: int, _read: plans.Read) -> SyncPlan:
        return plans.reject_now(session, organisation_id, connection_id, plan_id)

    plan = _in(org, connection_id, work)
    kept = len(plans.people_of(plan).get("removed", []))
    out().print(f"Rejected {plan_id}: {kept} people stay.", markup=False, soft_wrap=True)


def show_plan(plan: SyncPlan, heading: str) -> None:
    """A plan as a table of people by action, the bookings removals cancel, the teams it changes, its notes."""
    out().print(f"{heading} {plan.public_id} ({plan.status.value})", markup=False, soft_wrap=True)
    people = plans.people_of(plan)
    if any(people.values()):
        table = Table("Action", "Person", "Detail")
        for action in ACTIONS:
            for item in people.get(action, []):
                table.add_row(Text(action), Text(item["email"]), Text(_detail(action, item)))
        out().print(table)
    else:
        out().print("Nobody would change.", markup=False)
    for team in plan.changes.get("teams", []):
        change = ", ".join(
            part
            for part in (
                "new team" if team["team_id"] is None else "",
                f"renamed from {team['renamed_from']}" if team["renamed_from"] else "",
                f"+{len(team['added'])}" if team["added"] else "",
                f"-{len(team['removed'])}" if team["removed"] else "",
            )
            if part
        )
        out().print(f"Team {team['team']}: {change}", markup=False, soft_wrap=True)
    counts = ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in plan.counts.items() if count)
    out().print(f"Counts: {counts or 'nothing to do'}.", markup=False, soft_wrap=True)
    for note in plan.notes:
        out().print(f"Note: {note}", markup=False, soft_wrap=True)


def _detail(action: str, item: dict[str, Any]) -> str:
    if action == "updated" and item.get("was"):
        return f"was {item['was']}"
    if action == "removed":
        return f"{len(item.get('bookings', []))} future booking(s) cancelled"
    return str(item.get("reason") or item.get("name") or "")
