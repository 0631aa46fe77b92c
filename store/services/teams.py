"""Teams and who is in them."""

from __future__ import annotations

from sqlalchemy import Select, bindparam, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from store import outbox
from store.errors import Conflict, Invalid, NotFound
from store.models import Member, Team, TeamMembership


def name_key(name: str) -> str:
    """How team names are compared: spaces collapsed, case folded."""
    name = " ".join(name.split())
    if not name:
        raise Invalid("a team needs a name", field="name")
    return name.casefold()


def _unique(session: Session, organisation_id: int, key: str, team_id: int = 0) -> None:
    taken = session.scalar(
        select(Team.id).where(Team.organisation_id == organisation_id, Team.name_key == key, Team.id != team_id)
    )
    if taken is not None:
        raise Conflict("a team with that name exists", code="team_exists", field="name")


def create(session: Session, organisation_id: int, name: str) -> Team:
    """Create a team; names are unique per organisation, ignoring case and repeated spaces."""
    key = name_key(name)
    _unique(session, organisation_id, key)
    team = Team(organisation_id=organisation_id, name=" ".join(name.split()), name_key=key)
    session.add(team)
    session.flush()
    outbox.record(session, organisation_id, "team.created", {"team_id": team.id, "name": team.name})
    return team


def get(session: Session, organisation_id: int, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None or team.organisation_id != organisation_id:
        raise NotFound(f"no team {team_id}")
    return team


# Built once, for reads on the event loop (store.reads): the id of the organisation's team whose
# `name_key` is `:name_key`.
TEAM_ID_BY_NAME = select(Team.id).where(
    Team.organisation_id == bindparam("organisation_id"), Team.name_key == bindparam("name_key")
)


def get_by_name(session: Session, organisation_id: int, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.organisation_id == organisation_id, Team.name_key == name_key(name)))
    if team is None:
        raise NotFound(f"no team named {name!r}", field="team_name")
    return team


def list_all(session: Session, organisation_id: int) -> list[Team]:
    return list(session.scalars(select(Team).where(Team.organisation_id == organisation_id).order_by(Team.name_key)))


def member_ids(session: Session, team: Team) -> list[int]:
    return list(
        session.scalars(
            select(TeamMembership.member_id).where(TeamMembership.team_id == team.id).order_by(TeamMembership.member_id)
        )
    )


def rename(session: Session, team: Team, name: str) -> Team:
    key, name = name_key(name), " ".join(name.split())
    if name != team.name:
        _unique(session, team.organisation_id, key, team.id)
        team.name, team.name_key = name, key
        outbox.record(session, team.organisation_id, "team.updated", {"team_id": team.id, "name": team.name})
    return team


def delete(session: Session, team: Team) -> None:
    outbox.record(session, team.organisation_id, "team.deleted", {"team_id": team.id, "name": team.name})
    session.execute(sql_delete(TeamMembership).where(TeamMembership.team_id == team.id))
    session.delete(team)


def add_member(session: Session, team: Team, member: Member) -> bool:
    """Put a member in a team; False when they were in it already."""
    if member.organisation_id != team.organisation_id:
        raise NotFound(f"no member {member.id}")
    if session.get(TeamMembership, (team.id, member.id)) is not None:
        return False
    session.add(TeamMembership(team_id=team.id, member_id=member.id))
    outbox.record(
        session,
        team.organisation_id,
        "team.updated",
        {"team_id": team.id, "name": team.name, "added": [member.id]},
    )
    return True


def remove_member(session: Session, team: Team, member: Member) -> bool:
    """Take a member out of a team; False when they were not in it."""
    link = session.get(TeamMembership, (team.id, member.id))
    if link is None:
        return False
    session.delete(link)
    outbox.record(
        session,
        team.organisation_id,
        "team.updated",
        {"team_id": team.id, "name": team.name, "removed": [member.id]},
    )
    return True


def select_teams(organisation_id: int) -> Select[Team]:
    """The teams of an organisation, unordered."""
    return select(Team).where(Team.organisation_id == organisation_id)


def select_team_members(team: Team) -> Select[Member]:
    """The members in `team`, unordered."""
    return (
        select(Member)
        .join(TeamMembership, TeamMembership.member_id == Member.id)
        .where(TeamMembership.team_id == team.id)
    )
