from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Invitation, InvitationStatus, MemberStatus, Role
from store.services import desks, members, teams, tokens
from tests.conftest import Org, make_org
from tests.store.conftest import live_tokens, make_desk, member_in


def _ids(factory: sessionmaker[Session], query: Select[Any]) -> list[int]:
    with factory() as session:
        return sorted(row.id for row in session.scalars(query))


def test_select_members(session_factory: sessionmaker[Session], acme: Org) -> None:
    make_org(session_factory, "Globex")
    with transaction(session_factory) as session:
        invited = members.invite(session, acme.organisation.id, "new@acme.example").member_id
    org_id = acme.organisation.id
    assert _ids(session_factory, members.select_members(org_id)) == [acme.admin.id, acme.member.id, invited]
    assert _ids(session_factory, members.select_members(org_id, status=MemberStatus.INVITED)) == [invited]
    assert _ids(session_factory, members.select_members(org_id, role=Role.ADMIN)) == [acme.admin.id]
    assert _ids(session_factory, members.select_members(org_id, email=" WILL@acme.example")) == [acme.member.id]


def test_select_invitations_reports_expiry(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        fresh = members.invite(session, acme.organisation.id, "fresh@acme.example").id
        stale = members.invite(session, acme.organisation.id, "stale@acme.example")
        stale.expires_at = utcnow() - timedelta(minutes=1)
        stale_id = stale.id
        revoked = members.invite(session, acme.organisation.id, "gone@acme.example")
        members.revoke_invitation(session, revoked)
        revoked_id = revoked.id
    org_id = acme.organisation.id

    def having(status: InvitationStatus | None) -> list[int]:
        return _ids(session_factory, members.select_invitations(org_id, status=status))

    assert having(None) == [fresh, stale_id, revoked_id]
    assert having(InvitationStatus.PENDING) == [fresh]
    assert having(InvitationStatus.EXPIRED) == [stale_id]
    assert having(InvitationStatus.REVOKED) == [revoked_id]
    with session_factory() as session:
        stored = session.get_one(Invitation, stale_id)
        assert members.invitation_status(stored) is InvitationStatus.EXPIRED


def test_select_desks(session_factory: sessionmaker[Session], acme: Org) -> None:
    hq = make_desk(session_factory, acme, "1", building="HQ")
    room = make_desk(session_factory, acme, "Board", building="HQ", kind="room")
    annex = make_desk(session_factory, acme, "1", building="Annex")
    make_desk(session_factory, make_org(session_factory, "Globex"), "1", building="HQ")
    with transaction(session_factory) as session:
        desks.update(session, desks.get(session, acme.organisation.id, annex), active=False)
    org_id = acme.organisation.id
    assert _ids(session_factory, desks.select_desks(org_id)) == [hq, room, annex]
    assert _ids(session_factory, desks.select_desks(org_id, active=True)) == [hq, room]
    assert _ids(session_factory, desks.select_desks(org_id, kind="room")) == [room]
    assert _ids(session_factory, desks.select_desks(org_id, building=" HQ ")) == [hq, room]


def test_select_teams_and_their_members(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        blue = teams.create(session, acme.organisation.id, "Blue")
        red = teams.create(session, acme.organisation.id, "Red")
        teams.add_member(session, blue, member_in(session, acme))
    make_org(session_factory, "Globex")
    assert _ids(session_factory, teams.select_teams(acme.organisation.id)) == [blue.id, red.id]
    assert _ids(session_factory, teams.select_team_members(blue)) == [acme.member.id]
    assert _ids(session_factory, teams.select_team_members(red)) == []


def test_select_tokens_leaves_out_revoked(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        admin_tokens = live_tokens(session, acme.organisation.id, acme.admin.id)
        member_token = live_tokens(session, acme.organisation.id, acme.member.id)[0]
        tokens.revoke(session, member_token)
    assert _ids(session_factory, tokens.select_tokens(acme.organisation.id)) == [t.id for t in admin_tokens]
    assert _ids(session_factory, tokens.select_tokens(acme.organisation.id, member_id=acme.member.id)) == []
