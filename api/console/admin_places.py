"""Desks and teams (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.console.auth import Admin, AdminPosted
from api.console.pages import ConsoleRoute, done, render
from api.deps import DB
from api.v1.common import ResourceId
from store.models import Desk, Member, MemberStatus, TeamMembership
from store.services import desks, members, teams

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)
PLACES = "/console/admin/desks"


@router.get("/desks")
def places_page(request: Request, viewer: Admin, db: DB) -> HTMLResponse:
    """The organisation's desks and its teams with their members."""
    organisation_id = viewer.organisation.id
    all_desks = list(db.scalars(desks.select_desks(organisation_id).order_by(Desk.building, Desk.floor, Desk.label)))
    all_teams = teams.list_all(db, organisation_id)
    team_ids = [team.id for team in all_teams]
    people: dict[int, list[Member]] = {team_id: [] for team_id in team_ids}
    if team_ids:
        rows = db.execute(
            select(TeamMembership.team_id, Member)
            .join(Member, Member.id == TeamMembership.member_id)
            .where(TeamMembership.team_id.in_(team_ids))
            .order_by(Member.email)
        )
        for team_id, member in rows:
            people[team_id].append(member)
    active = list(
        db.scalars(members.select_members(organisation_id, status=MemberStatus.ACTIVE).order_by(Member.email))
    )
    return render(request, "desks.html", viewer, desks=all_desks, teams=all_teams, people=people, active=active)


@router.post("/desks")
def create_desk(
    request: Request,
    viewer: AdminPosted,
    db: DB,
    label: Annotated[str, Form(max_length=100)],
    building: Annotated[str, Form(max_length=100)] = "",
    floor: Annotated[str, Form(max_length=50)] = "",
    zone: Annotated[str, Form(max_length=100)] = "",
    kind: Annotated[str, Form(max_length=32)] = "desk",
) -> Response:
    """Add a desk."""
    desk = desks.create(db, viewer.organisation.id, label, building=building, floor=floor, zone=zone, kind=kind)
    db.commit()
    return done(request, PLACES, f"Desk {desk.label} added.")


@router.post("/desks/{desk_id}/delete")
def delete_desk(request: Request, desk_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Delete a desk (one with bookings is refused by the service)."""
    desk = desks.get(db, viewer.organisation.id, desk_id)
    label = desk.label
    desks.delete(db, desk)
    db.commit()
    return done(request, PLACES, f"Desk {label} deleted.")


@router.post("/teams")
def create_team(request: Request, viewer: AdminPosted, db: DB, name: Annotated[str, Form(max_length=200)]) -> Response:
    """Add a team."""
    team = teams.create(db, viewer.organisation.id, name)
    db.commit()
    return done(request, PLACES, f"Team {team.name} added.")


@router.post("/teams/{team_id}/delete")
def delete_team(request: Request, team_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Delete a team (its members stay members)."""
    team = teams.get(db, viewer.organisation.id, team_id)
    name = team.name
    teams.delete(db, team)
    db.commit()
    return done(request, PLACES, f"Team {name} deleted.")


@router.post("/teams/{team_id}/members")
def add_to_team(
    request: Request, team_id: ResourceId, viewer: AdminPosted, db: DB, member_id: Annotated[ResourceId, Form()]
) -> Response:
    """Put a member in a team."""
    team = teams.get(db, viewer.organisation.id, team_id)
    member = members.get(db, viewer.organisation.id, member_id)
    teams.add_member(db, team, member)
    db.commit()
    return done(request, PLACES, f"{member.email} is in {team.name}.")


@router.post("/teams/{team_id}/members/{member_id}/remove")
def remove_from_team(
    request: Request, team_id: ResourceId, member_id: ResourceId, viewer: AdminPosted, db: DB
) -> Response:
    """Take a member out of a team."""
    team = teams.get(db, viewer.organisation.id, team_id)
    member = members.get(db, viewer.organisation.id, member_id)
    teams.remove_member(db, team, member)
    db.commit()
    return done(request, PLACES, f"{member.email} left {team.name}.")
