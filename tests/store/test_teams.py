from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.errors import Conflict, Invalid, NotFound
from store.models import Team, TeamMembership
from store.services import teams
from tests.conftest import Org, make_org
from tests.store.conftest import Outbox, member_in, refused


def _team(factory: sessionmaker[Session], org: Org, name: str = "Blue Team") -> int:
    with transaction(factory) as session:
        return teams.create(session, org.organisation.id, name).id


def test_create_normalises_spaces_and_records_event(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    team_id = _team(session_factory, acme, "  Blue   Team ")
    with session_factory() as session:
        team = teams.get(session, acme.organisation.id, team_id)
        assert (team.name, team.name_key) == ("Blue Team", "blue team")
    assert outbox.only("team.created") == {"team_id": team_id, "name": "Blue Team"}


def test_create_without_name_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Invalid) as attempt:
        teams.create(attempt.session, acme.organisation.id, " \t ")
    assert attempt.error.field == "name"


def test_name_is_unique_ignoring_case(session_factory: sessionmaker[Session], acme: Org) -> None:
    _team(session_factory, acme)
    _team(session_factory, make_org(session_factory, "Globex"))
    with refused(session_factory, Conflict) as attempt:
        teams.create(attempt.session, acme.organisation.id, "BLUE  team")
    assert (attempt.error.code, attempt.error.field) == ("team_exists", "name")


def test_get_by_name_ignores_case(session_factory: sessionmaker[Session], acme: Org) -> None:
    team_id = _team(session_factory, acme)
    with session_factory() as session:
        assert teams.get_by_name(session, acme.organisation.id, "blue TEAM").id == team_id


def test_lookups_are_scoped_to_the_organisation(session_factory: sessionmaker[Session], acme: Org) -> None:
    team_id = _team(session_factory, acme)
    globex = make_org(session_factory, "Globex")
    with refused(session_factory, NotFound) as attempt:
        teams.get(attempt.session, globex.organisation.id, team_id)
    with refused(session_factory, NotFound) as attempt:
        teams.get_by_name(attempt.session, globex.organisation.id, "Blue Team")
    assert attempt.error.field == "team_name"


def test_list_all_by_name(session_factory: sessionmaker[Session], acme: Org) -> None:
    for name in ("green", "Blue", "amber"):
        _team(session_factory, acme, name)
    with session_factory() as session:
        assert [t.name for t in teams.list_all(session, acme.organisation.id)] == ["amber", "Blue", "green"]


def test_rename_records_event(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    team_id = _team(session_factory, acme)
    outbox.skip()
    with transaction(session_factory) as session:
        teams.rename(session, teams.get(session, acme.organisation.id, team_id), " Red  Team")
    with session_factory() as session:
        assert teams.get(session, acme.organisation.id, team_id).name == "Red Team"
    assert outbox.only("team.updated") == {"team_id": team_id, "name": "Red Team"}


def test_rename_of_case_only(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    team_id = _team(session_factory, acme)
    outbox.skip()
    with transaction(session_factory) as session:
        teams.rename(session, teams.get(session, acme.organisation.id, team_id), "BLUE TEAM")
    assert outbox.only("team.updated") == {"team_id": team_id, "name": "BLUE TEAM"}


def test_rename_to_the_same_name_records_nothing(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    team_id = _team(session_factory, acme)
    outbox.skip()
    with transaction(session_factory) as session:
        teams.rename(session, teams.get(session, acme.organisation.id, team_id), "  Blue   Team ")
    assert outbox.new() == []


def test_rename_to_taken_name_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    _team(session_factory, acme, "Red")
    team_id = _team(session_factory, acme)
    with refused(session_factory, Conflict) as attempt:
        teams.rename(attempt.session, teams.get(attempt.session, acme.organisation.id, team_id), "red")
    assert attempt.error.code == "team_exists"


def test_rename_to_empty_name_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    team_id = _team(session_factory, acme)
    with refused(session_factory, Invalid) as attempt:
        teams.rename(attempt.session, teams.get(attempt.session, acme.organisation.id, team_id), "  ")
    assert attempt.error.field == "name"


def test_add_and_remove_members(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    team_id = _team(session_factory, acme)
    outbox.skip()
    with transaction(session_factory) as session:
        team = teams.get(session, acme.organisation.id, team_id)
        assert teams.add_member(session, team, member_in(session, acme)) is True
        assert teams.add_member(session, team, member_in(session, acme, "admin")) is True
        assert teams.add_member(session, team, member_in(session, acme)) is False
    with session_factory() as session:
        team = teams.get(session, acme.organisation.id, team_id)
        assert teams.member_ids(session, team) == sorted([acme.member.id, acme.admin.id])
    with transaction(session_factory) as session:
        team = teams.get(session, acme.organisation.id, team_id)
        assert teams.remove_member(session, team, member_in(session, acme)) is True
        assert teams.remove_member(session, team, member_in(session, acme)) is False
    with session_factory() as session:
        assert teams.member_ids(session, teams.get(session, acme.organisation.id, team_id)) == [acme.admin.id]
    assert [(e.type, e.data) for e in outbox.new()] == [
        ("team.updated", {"team_id": team_id, "name": "Blue Team", "added": [acme.member.id]}),
        ("team.updated", {"team_id": team_id, "name": "Blue Team", "added": [acme.admin.id]}),
        ("team.updated", {"team_id": team_id, "name": "Blue Team", "removed": [acme.member.id]}),
    ]


def test_member_of_another_organisation_cannot_join(session_factory: sessionmaker[Session], acme: Org) -> None:
    team_id = _team(session_factory, acme)
    globex = make_org(session_factory, "Globex")
    with refused(session_factory, NotFound) as attempt:
        team = teams.get(attempt.session, acme.organisation.id, team_id)
        teams.add_member(attempt.session, team, member_in(attempt.session, globex))


def test_delete_removes_team_and_memberships(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    team_id = _team(session_factory, acme)
    with transaction(session_factory) as session:
        teams.add_member(session, teams.get(session, acme.organisation.id, team_id), member_in(session, acme))
    outbox.skip()
    with transaction(session_factory) as session:
        teams.delete(session, teams.get(session, acme.organisation.id, team_id))
    with session_factory() as session:
        assert session.get(Team, team_id) is None
        assert session.scalars(select(TeamMembership)).all() == []
        assert member_in(session, acme).id == acme.member.id
    assert outbox.only("team.deleted") == {"team_id": team_id, "name": "Blue Team"}
