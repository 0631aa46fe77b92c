"""Sync plans of a connection (admins): what a sync would do, read before it does it, applied as read;
and the removals a sync held back over the connection's removal limit, approved or rejected. The
pages call the flows the /v1 plan routes call (`sync.directory.plans.make_now`, `apply_now`,
`reject_now`) and show the plan as `PlanOut` does."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.console.admin_connections import LIST
from api.console.auth import Admin, AdminPosted
from api.console.pages import ConsoleRoute, done, render
from api.deps import DB, context
from api.v1.common import ResourceId
from api.v1.endpoints.plans import PlanId, PlanOut
from store.models import Desk, PlanStatus
from store.services import connections
from store.services import plans as stored
from sync.directory import plans

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)
# The order a plan's people are shown in, with what each action means for an admin.
ACTIONS = {
    "removed": "leave the organisation (their future bookings are cancelled, their tokens revoked)",
    "invited": "are invited",
    "added": "become members at once",
    "restored": "come back as they were before their removal",
    "linked": "are linked to the member they already are",
    "updated": "get a new address or name",
    "kept": "stay, although the directory no longer has them in scope",
    "skipped": "are left out",
}


def _where(connection_id: int, plan_id: str) -> str:
    return f"{LIST}/{connection_id}/plans/{plan_id}"


@router.post("/connections/{connection_id}/plan")
def make_plan(request: Request, connection_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Read the directory and keep what a sync would do now (nothing changes), as POST …/plan does."""
    connection = connections.get(db, viewer.organisation.id, connection_id)
    plan = plans.make_now(db, connection.id, context(request).jobs.read_directory)
    return done(request, _where(connection.id, plan.public_id), "The directory was read: this is what a sync would do.")


@router.get("/connections/{connection_id}/plans/{plan_id}")
def plan_page(request: Request, connection_id: ResourceId, plan_id: PlanId, viewer: Admin, db: DB) -> HTMLResponse:
    """A plan person by person and team by team, with the bookings each removal cancels, and its buttons."""
    connection = connections.get(db, viewer.organisation.id, connection_id)
    shown = PlanOut.of(stored.get(db, viewer.organisation.id, connection.id, plan_id))
    desk_ids = {b.desk_id for people in shown.people.values() for person in people for b in person.bookings or []}
    labels = {desk_id: label for desk_id, label in db.execute(select(Desk.id, Desk.label).where(Desk.id.in_(desk_ids)))}
    return render(request, "plan.html", viewer, connection=connection, plan=shown, actions=ACTIONS, desks=labels)


@router.post("/connections/{connection_id}/plans/{plan_id}/apply")
def apply_plan(request: Request, connection_id: ResourceId, plan_id: PlanId, viewer: AdminPosted, db: DB) -> Response:
    """Apply the plan as read (a held one: approve its removals), as POST …/apply does; when the directory
    moved on, nothing changes and the fresh plan is shown instead."""
    connection = connections.get(db, viewer.organisation.id, connection_id)
    held = stored.get(db, viewer.organisation.id, connection.id, plan_id).status is PlanStatus.HELD
    outcome = plans.apply_now(db, viewer.organisation.id, connection.id, plan_id, context(request).jobs.read_directory)
    if outcome.applied:
        counts = ", ".join(f"{name} {count}" for name, count in outcome.tally.counts.items() if count) or "no change"
        verb = "Approved" if held else "Applied"
        return done(request, f"{LIST}/{connection.id}", f"{verb}: {counts}.")
    if outcome.fresh is not None:
        message = "The directory moved on since this plan was read; nothing was applied. This is the fresh plan."
        return done(request, _where(connection.id, outcome.fresh.public_id), message, error=True)
    message = "None of the held removals stands any more (the directory changed); nothing was applied."
    return done(request, f"{LIST}/{connection.id}", message, error=True)


@router.post("/connections/{connection_id}/plans/{plan_id}/reject")
def reject_plan(request: Request, connection_id: ResourceId, plan_id: PlanId, viewer: AdminPosted, db: DB) -> Response:
    """Keep the people a held plan would remove, as POST …/reject does."""
    connection = connections.get(db, viewer.organisation.id, connection_id)
    plan = plans.reject_now(db, viewer.organisation.id, connection.id, plan_id)
    people = len(plan.changes.get("people", {}).get("removed", []))
    message = f"Rejected: {people} people stay; their removal is not proposed again until the directory changes them."
    return done(request, f"{LIST}/{connection.id}", message)
