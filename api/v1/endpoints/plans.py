"""Sync plans of a connection (admins): what a sync would do, read before it does it, and removals held.

`POST /v1/connections/{id}/plan` reads the directory and keeps the plan for an hour; applying it reads
again and applies it only when the directory has not moved on (else 409 with the fresh plan). A sync
that would remove more people within an hour than the connection's `removal_limit` allows applies the
rest and holds the removals in a plan of status `held`: apply approves it, reject keeps the people.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.context import ApiContext
from api.deps import DB, AdminCaller, context
from api.errors import PROBLEM_JSON, problem_body
from api.v1.common import PROBLEM_REF, Resource, Timestamp, problems
from api.v1.endpoints.connections import Chosen
from store.models import SyncPlan
from store.services import plans as stored
from sync.directory import plans

router = APIRouter(prefix="/connections", tags=["connections"])

Context = Annotated[ApiContext, Depends(context)]
PlanId = Annotated[str, Path(max_length=40, description="The plan's id (plan_…).")]


class PlanBookingOut(BaseModel):
    """A future booking a removal cancels."""

    booking_id: int
    desk_id: int
    start: Timestamp
    end: Timestamp


class PlanPersonOut(BaseModel):
    """One person a plan changes."""

    user: str = Field(description="The directory's id for them.")
    email: str = Field(description="Their address (updated: the new one).")
    name: str = Field(description="The name the directory gives them.")
    member_id: int | None = Field(description="Their membership; null for someone not a member yet.")
    was: str | None = Field(default=None, description="updated: the address before.")
    reason: str | None = Field(default=None, description="kept, skipped: why.")
    bookings: list[PlanBookingOut] | None = Field(
        default=None, description="removed: the future bookings the removal cancels."
    )


class PlanTeamOut(BaseModel):
    """A team a plan changes: a group mirrored as a team (made when `team_id` is null)."""

    group: str = Field(description="The directory group's id.")
    team: str = Field(description="The team's name, as it is or will be.")
    team_id: int | None
    renamed_from: str | None
    added: list[str] = Field(description="Addresses put in the team.")
    removed: list[str] = Field(description="Addresses taken out.")


class PlanOut(Resource):
    """What a sync of a connection would do (or, `held`, the removals a sync held back for an admin)."""

    id: str = Field(validation_alias="public_id", description="plan_…")
    connection_id: int
    status: Literal["open", "held", "applied", "rejected", "stale"] = Field(
        description="open: may be applied until `expires_at`; held: removals waiting for an admin (apply "
        "approves, reject keeps the people); stale: the directory moved on, `replaced_by` is the fresh plan."
    )
    created_at: Timestamp
    expires_at: Timestamp | None
    decided_at: Timestamp | None
    replaced_by: str | None
    counts: dict[str, int] = Field(description="People by action, teams changed, bookings cancelled.")
    people: dict[str, list[PlanPersonOut]] = Field(
        description="By action: invited, added, restored, linked, updated, removed, kept, skipped."
    )
    teams: list[PlanTeamOut]
    notes: list[str]
    result: dict[str, int] | None = Field(default=None, description="Applied now: what the apply did, by outcome.")

    @classmethod
    def of(cls, plan: SyncPlan, result: dict[str, int] | None = None) -> PlanOut:
        """The plan as admins read it."""
        changes: dict[str, Any] = plan.changes
        return cls.model_validate(
            {
                "public_id": plan.public_id,
                "connection_id": plan.connection_id,
                "status": plan.status.value,
                "created_at": plan.created_at,
                "expires_at": plan.expires_at,
                "decided_at": plan.decided_at,
                "replaced_by": plan.replaced_by,
                "counts": plan.counts,
                "people": changes.get("people", {}),
                "teams": changes.get("teams", []),
                "notes": plan.notes,
                "result": result,
            }
        )


STALE_409: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The directory moved on since the plan was made (the problem's `plan` is the fresh one, "
        "to read and apply), the plan was applied, rejected or replaced already, or a sync is running.",
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
}


def _read(ctx: ApiContext) -> plans.Read:
    read: plans.Read = ctx.jobs.read_directory  # the worker's readers, through the API's one port
    return read


@router.post("/{connection_id}/plan", status_code=201, summary="Plan a sync", responses=problems(404, 409))
def make_plan(connection: Chosen, response: Response, db: DB, ctx: Context) -> PlanOut:
    """Read the directory and answer what a sync would do now, changing nothing (admins only): invitations,
    links to existing members, renames, team changes, removals with the future bookings each cancels. The
    plan is kept for an hour: apply it with `POST …/plans/{plan_id}/apply`."""
    plan = plans.make_now(db, connection.id, _read(ctx))
    response.headers["Location"] = f"/v1/connections/{connection.id}/plans/{plan.public_id}"
    return PlanOut.of(plan)


@router.get("/{connection_id}/plans/{plan_id}", summary="Get a plan", responses=problems(404))
def get_plan(connection: Chosen, plan_id: PlanId, caller: AdminCaller, db: DB) -> PlanOut:
    """One plan of the connection (admins only); an expired open plan is gone (404)."""
    return PlanOut.of(stored.get(db, caller.organisation.id, connection.id, plan_id))


@router.post(
    "/{connection_id}/plans/{plan_id}/apply",
    summary="Apply a plan, or approve held removals",
    response_model=PlanOut,
    responses={**problems(404), **STALE_409},
)
def apply_plan(
    connection: Chosen, plan_id: PlanId, caller: AdminCaller, request: Request, db: DB, ctx: Context
) -> PlanOut | JSONResponse:
    """Apply exactly this plan (admins only): the directory is read again, and when the connection has not
    synced since and the plan is still what a sync would do, it is applied (nothing held: an admin's
    apply is the approval). Otherwise nothing changes: 409, with the fresh plan in `plan`. A held plan is
    approved: its removals are applied if every one still stands, else 409 with the fresh held plan."""
    outcome = plans.apply_now(db, caller.organisation.id, connection.id, plan_id, _read(ctx))
    if outcome.applied:
        return PlanOut.of(outcome.plan, result={k: v for k, v in outcome.tally.counts.items() if v})
    detail = f"the directory moved on since plan {plan_id} was made; nothing was applied"
    body = problem_body(request.url.path, 409, detail, "plan_stale")
    if outcome.fresh is not None:
        body["detail"] += f": read the fresh plan {outcome.fresh.public_id} and apply it"
        body["plan"] = PlanOut.of(outcome.fresh).model_dump(mode="json")
    else:
        body["detail"] += ": none of its removals stands any more"
    return JSONResponse(body, status_code=409, media_type=PROBLEM_JSON)


@router.post("/{connection_id}/plans/{plan_id}/reject", summary="Reject held removals", responses=problems(404, 409))
def reject_plan(connection: Chosen, plan_id: PlanId, caller: AdminCaller, db: DB) -> PlanOut:
    """Keep the people a held plan would remove (admins only): they stay as they are, and the connection
    stops proposing their removal until the directory changes them."""
    return PlanOut.of(plans.reject_now(db, caller.organisation.id, connection.id, plan_id))
