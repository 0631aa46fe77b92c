from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.errors import Conflict, Invalid, NotAllowed, NotFound
from store.models import Invitation, InvitationStatus, Member, MemberStatus, Role
from store.services import members
from tests.conftest import Org, make_org
from tests.store.conftest import Outbox, member_in, refused


def _invite(factory: sessionmaker[Session], org: Org, email: str = "new@acme.example", **options: Any) -> int:
    with transaction(factory) as session:
        return members.invite(session, org.organisation.id, email, **options).id


def _token(factory: sessionmaker[Session], invitation_id: int) -> str:
    with transaction(factory) as session:
        invitation = session.get_one(Invitation, invitation_id)
        token = members.issue_invitation_token(session, invitation)
        assert token is not None
        members.mark_invitation_sent(session, invitation)
    return token


def _invitation(factory: sessionmaker[Session], invitation_id: int) -> Invitation:
    with factory() as session:
        return session.get_one(Invitation, invitation_id)


def test_invite_creates_invited_member_and_pending_invitation(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    before = utcnow()
    invitation_id = _invite(
        session_factory, acme, " New@ACME.example ", role=Role.ADMIN, display_name="Newt", source="cli"
    )
    with session_factory() as session:
        invitation = session.get_one(Invitation, invitation_id)
        member = session.get_one(Member, invitation.member_id)
    assert (member.email, member.display_name, member.role, member.status) == (
        "new@acme.example",
        "Newt",
        Role.ADMIN,
        MemberStatus.INVITED,
    )
    assert (invitation.email, invitation.status, invitation.source) == ("new@acme.example", "pending", "cli")
    assert invitation.token_hash is None
    assert before + timedelta(days=14) <= invitation.expires_at <= utcnow() + timedelta(days=14)
    assert outbox.only("membership.invited") == {
        "member_id": member.id,
        "email": "new@acme.example",
        "role": "admin",
        "status": "invited",
        "invitation_id": invitation_id,
        "source": "cli",
    }


def test_invite_records_who_invited(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        invitation = members.invite(
            session, acme.organisation.id, "new@acme.example", invited_by=member_in(session, acme, "admin")
        )
    assert invitation.invited_by_id == acme.admin.id


def test_invite_active_member_conflicts_whatever_the_case(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Conflict) as attempt:
        members.invite(attempt.session, acme.organisation.id, "Will@Acme.Example")
    assert (attempt.error.code, attempt.error.field) == ("already_member", "email")


def test_invite_bad_email_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Invalid) as attempt:
        members.invite(attempt.session, acme.organisation.id, "not an email")
    assert attempt.error.field == "email"


def test_reinvite_replaces_pending_invitation(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    first = _invite(session_factory, acme)
    old_token = _token(session_factory, first)
    second = _invite(session_factory, acme, "NEW@acme.example")
    assert _invitation(session_factory, first).status is InvitationStatus.REVOKED
    assert _invitation(session_factory, first).revoked_at is not None
    assert _invitation(session_factory, second).status is InvitationStatus.PENDING
    with session_factory() as session:
        assert len(session.scalars(select(Member).where(Member.email == "new@acme.example")).all()) == 1
    assert outbox.types() == ["membership.invited", "membership.invited"]
    with refused(session_factory, NotAllowed) as attempt:
        members.accept_invitation(attempt.session, old_token)


def test_invite_removed_member_invites_again(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        members.remove(session, member_in(session, acme))
    invitation_id = _invite(session_factory, acme, "will@acme.example")
    with session_factory() as session:
        member = member_in(session, acme)
        assert (member.status, member.removed_at) == (MemberStatus.INVITED, None)
    assert _invitation(session_factory, invitation_id).member_id == acme.member.id


def test_reinvite_takes_the_new_role_and_name(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        members.update(session, member_in(session, acme), role=Role.ADMIN)
        members.remove(session, member_in(session, acme))
    token = _token(session_factory, _invite(session_factory, acme, "will@acme.example", display_name="Bill"))
    with transaction(session_factory) as session:
        member = members.accept_invitation(session, token)
    assert (member.role, member.display_name) == (Role.MEMBER, "Bill")


def test_accept_flow(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    invitation_id = _invite(session_factory, acme)
    token = _token(session_factory, invitation_id)
    invitation = _invitation(session_factory, invitation_id)
    assert invitation.sent_at is not None
    assert invitation.token_hash == members.hash_secret(token)
    assert token not in invitation.token_hash
    outbox.skip()

    with transaction(session_factory) as session:
        member = members.accept_invitation(session, token, display_name=" Newton ")

    assert (member.status, member.display_name) == (MemberStatus.ACTIVE, "Newton")
    accepted = _invitation(session_factory, invitation_id)
    assert accepted.status is InvitationStatus.ACCEPTED
    assert accepted.accepted_at is not None
    assert outbox.only("membership.accepted") == {
        "member_id": member.id,
        "email": "new@acme.example",
        "role": "member",
        "status": "active",
        "invitation_id": invitation_id,
    }


def test_issuing_again_replaces_the_unsent_token(session_factory: sessionmaker[Session], acme: Org) -> None:
    invitation_id = _invite(session_factory, acme)
    with transaction(session_factory) as session:
        invitation = session.get_one(Invitation, invitation_id)
        first = members.issue_invitation_token(session, invitation)
        second = members.issue_invitation_token(session, invitation)
    assert first is not None
    assert second is not None
    assert first != second
    with refused(session_factory, NotFound) as attempt:
        members.accept_invitation(attempt.session, first)
    with transaction(session_factory) as session:
        assert members.accept_invitation(session, second).status is MemberStatus.ACTIVE


def test_sent_invitation_gets_no_new_token(session_factory: sessionmaker[Session], acme: Org) -> None:
    invitation_id = _invite(session_factory, acme)
    _token(session_factory, invitation_id)
    with transaction(session_factory) as session:
        assert members.issue_invitation_token(session, session.get_one(Invitation, invitation_id)) is None


def test_accepted_invitation_cannot_be_accepted_again(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    token = _token(session_factory, _invite(session_factory, acme))
    with transaction(session_factory) as session:
        members.accept_invitation(session, token)
    outbox.skip()
    with refused(session_factory, NotAllowed) as attempt:
        members.accept_invitation(attempt.session, token)
    assert "accepted" in attempt.error.message
    assert outbox.new() == []


def test_unknown_token_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    _token(session_factory, _invite(session_factory, acme))
    with refused(session_factory, NotFound) as attempt:
        members.accept_invitation(attempt.session, "not-a-token")


def test_expired_invitation_cannot_be_accepted(session_factory: sessionmaker[Session], acme: Org) -> None:
    invitation_id = _invite(session_factory, acme)
    token = _token(session_factory, invitation_id)
    with transaction(session_factory) as session:
        session.execute(
            update(Invitation).where(Invitation.id == invitation_id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert members.invitation_status(_invitation(session_factory, invitation_id)) is InvitationStatus.EXPIRED
    with refused(session_factory, NotAllowed) as attempt:
        members.accept_invitation(attempt.session, token)
    assert "expired" in attempt.error.message
    with session_factory() as session:
        assert member_status(session, "new@acme.example", acme) is MemberStatus.INVITED


def test_expired_invitation_gets_no_token(session_factory: sessionmaker[Session], acme: Org) -> None:
    invitation_id = _invite(session_factory, acme)
    with transaction(session_factory) as session:
        invitation = session.get_one(Invitation, invitation_id)
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        assert members.issue_invitation_token(session, invitation) is None


def test_revoke_invitation(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    invitation_id = _invite(session_factory, acme)
    token = _token(session_factory, invitation_id)
    outbox.skip()
    with transaction(session_factory) as session:
        members.revoke_invitation(session, members.get_invitation(session, acme.organisation.id, invitation_id))
    invitation = _invitation(session_factory, invitation_id)
    assert (invitation.status, invitation.revoked_at is not None) == (InvitationStatus.REVOKED, True)
    with session_factory() as session:
        assert member_status(session, "new@acme.example", acme) is MemberStatus.REMOVED
    assert outbox.only("invitation.revoked") == {
        "invitation_id": invitation_id,
        "member_id": invitation.member_id,
        "email": "new@acme.example",
    }
    with refused(session_factory, NotAllowed) as attempt:
        members.accept_invitation(attempt.session, token)
    assert "revoked" in attempt.error.message


def test_revoking_a_revoked_invitation_is_not_allowed(session_factory: sessionmaker[Session], acme: Org) -> None:
    invitation_id = _invite(session_factory, acme)
    with transaction(session_factory) as session:
        members.revoke_invitation(session, session.get_one(Invitation, invitation_id))
    with refused(session_factory, NotAllowed) as attempt:
        members.revoke_invitation(attempt.session, attempt.session.get_one(Invitation, invitation_id))


def test_get_invitation_of_another_organisation_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    globex = make_org(session_factory, "Globex")
    invitation_id = _invite(session_factory, acme)
    with refused(session_factory, NotFound) as attempt:
        members.get_invitation(attempt.session, globex.organisation.id, invitation_id)


def member_status(session: Session, email: str, org: Org) -> MemberStatus:
    return members.get_by_email(session, org.organisation.id, email).status
