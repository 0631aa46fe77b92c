"""Teams and who is in them. Everyone may read; admins change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints

from api.deps import DB, AdminCaller, ApiCaller
from api.errors import ApiError
from api.v1.common import PatchBody, RequestBody, Resource, ResourceId, Timestamp, path_id, problems
from api.v1.endpoints.members import KEYSET as MEMBER_KEYSET
from api.v1.endpoints.members import MemberId, MemberOut
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.models import Team
from store.services import members, teams

router = APIRouter(prefix="/teams", tags=["teams"])

KEYSET = Keyset("teams", (Team.id,))
TeamId = Annotated[int, path_id("The team's id.")]
TeamName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TeamOut(Resource):
    """A named group of members."""

    id: int
    name: str = Field(description="Unique in the organisation, ignoring case and repeated spaces.")
    created_at: Timestamp
    updated_at: Timestamp


class TeamIn(RequestBody):
    """A new team."""

    name: TeamName


class TeamPatch(PatchBody):
    """A new name for the team."""

    name: TeamName | None = None


class TeamMembersIn(RequestBody):
    """Members to put in the team."""

    member_ids: list[ResourceId] = Field(min_length=1, max_length=500)


class TeamMembersAdded(BaseModel):
    """Which of the given members were added; the others were in the team already."""

    added: list[int]


@router.post("", status_code=201, summary="Create a team", responses=problems(400, 409, 413, 415, 422))
def create_team(body: TeamIn, response: Response, caller: AdminCaller, db: DB) -> TeamOut:
    """Create a team (admins only). A name already taken in the organisation is a 409 conflict."""
    team = teams.create(db, caller.organisation.id, body.name)
    db.commit()
    response.headers["Location"] = f"/v1/teams/{team.id}"
    return TeamOut.model_validate(team)


@router.get("", summary="List teams")
def list_teams(caller: ApiCaller, db: DB, paging: Paging) -> Page[TeamOut]:
    """The organisation's teams, by id."""
    rows, cursor = fetch(db, teams.select_teams(caller.organisation.id), KEYSET, paging)
    return page_of([TeamOut.model_validate(row) for row in rows], cursor)


@router.get("/{team_id}", summary="Get a team", responses=problems(404))
def get_team(team_id: TeamId, caller: ApiCaller, db: DB) -> TeamOut:
    """One team of the organisation."""
    return TeamOut.model_validate(teams.get(db, caller.organisation.id, team_id))


@router.patch("/{team_id}", summary="Rename a team", responses=problems(400, 404, 409, 413, 415, 422))
def update_team(team_id: TeamId, body: TeamPatch, caller: AdminCaller, db: DB) -> TeamOut:
    """Rename a team (admins only). A name already taken is a 409 conflict."""
    team = teams.get(db, caller.organisation.id, team_id)
    if body.name is not None:
        teams.rename(db, team, body.name)
    db.commit()
    return TeamOut.model_validate(team)


@router.delete("/{team_id}", status_code=204, summary="Delete a team", responses=problems(404))
def delete_team(team_id: TeamId, caller: AdminCaller, db: DB) -> Response:
    """Delete a team (admins only); its members stay members of the organisation."""
    teams.delete(db, teams.get(db, caller.organisation.id, team_id))
    db.commit()
    return Response(status_code=204)


@router.get("/{team_id}/members", summary="List a team's members", responses=problems(404))
def list_team_members(team_id: TeamId, caller: ApiCaller, db: DB, paging: Paging) -> Page[MemberOut]:
    """The members in the team, by id."""
    team = teams.get(db, caller.organisation.id, team_id)
    rows, cursor = fetch(db, teams.select_team_members(team), MEMBER_KEYSET, paging)
    return page_of([MemberOut.model_validate(row) for row in rows], cursor)


@router.post(
    "/{team_id}/members",
    summary="Add members to a team",
    responses=problems(400, 404, 413, 415, 422),
)
def add_team_members(team_id: TeamId, body: TeamMembersIn, caller: AdminCaller, db: DB) -> TeamMembersAdded:
    """Put members in the team (admins only). All or nothing: an unknown member id is a 404 and
    adds no one."""
    team = teams.get(db, caller.organisation.id, team_id)
    people = [members.get(db, caller.organisation.id, member_id) for member_id in dict.fromkeys(body.member_ids)]
    added = [person.id for person in people if teams.add_member(db, team, person)]
    db.commit()
    return TeamMembersAdded(added=added)


@router.delete(
    "/{team_id}/members/{member_id}",
    status_code=204,
    summary="Take a member out of a team",
    responses=problems(404),
)
def remove_team_member(team_id: TeamId, member_id: MemberId, caller: AdminCaller, db: DB) -> Response:
    """Take a member out of the team (admins only); a member not in the team is a 404."""
    team = teams.get(db, caller.organisation.id, team_id)
    member = members.get(db, caller.organisation.id, member_id)
    if not teams.remove_member(db, team, member):
        raise ApiError(404, f"Member {member_id} is not in team {team_id}.", code="not_in_team")
    db.commit()
    return Response(status_code=204)
