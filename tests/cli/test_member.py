"""`deskbridge member …`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import ApiToken, Booking, BookingStatus, Member, MemberRemoval, MemberStatus, OutboxEvent, Role
from store.services import bookings, desks, members, tokens
from tests.cli.conftest import count, failed, ok, run
from tests.conftest import make_org


def member(factory: sessionmaker[Session], email: str) -> Member:
    with factory() as session:
        found = session.scalar(select(Member).where(Member.email == email))
        assert found is not None, email
        return found


def event_types(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.organisation_id, OutboxEvent.seq)))


def test_member_add_makes_an_active_admin_with_api_access(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")

    result = ok("member", "add", "  Grace@Example.COM ", "--name", "Grace Hopper", "--admin", "--api")

    assert "grace@example.com" in result.stdout
    added = member(factory, "grace@example.com")
    assert (added.status, added.role, added.api_access, added.display_name) == (
        MemberStatus.ACTIVE,
        Role.ADMIN,
        True,
        "Grace Hopper",
    )
    assert "membership.added" in event_types(factory)


def test_member_add_defaults_to_a_member_without_api_access(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "linus@example.com", "--org", "acme")
    added = member(factory, "linus@example.com")
    assert (added.role, added.api_access) == (Role.MEMBER, False)


def test_member_add_refuses_a_duplicate_whatever_the_case(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "grace@example.com")

    assert "already a member" in failed("member", "add", "GRACE@example.com", "--admin").stderr
    assert member(factory, "grace@example.com").role is Role.MEMBER
    assert count(factory, Member) == 1


def test_member_add_refuses_an_invalid_email_and_writes_nothing(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    events_before = count(factory, OutboxEvent)

    assert "not an email address" in failed("member", "add", "not-an-address").stderr
    assert count(factory, Member) == 0
    assert count(factory, OutboxEvent) == events_before


def test_member_add_in_an_unknown_organisation(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    assert "no organisation with slug 'globex'" in failed("member", "add", "a@example.com", "--org", "globex").stderr
    assert count(factory, Member) == 0


def test_member_add_needs_org_when_there_are_several(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("org", "create", "Globex")
    assert "--org" in failed("member", "add", "a@example.com").stderr
    assert count(factory, Member) == 0


def test_member_add_without_an_email_is_a_usage_error(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    assert run("member", "add").exit_code == 2


def test_member_add_brings_back_a_removed_member(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory)
    ok("member", "remove", acme.member.email)

    ok("member", "add", acme.member.email)

    assert member(factory, acme.member.email).status is MemberStatus.ACTIVE


def test_grant_and_revoke_api_access(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "grace@example.com")

    granted = ok("member", "grant-api", "Grace@example.com")

    assert member(factory, "grace@example.com").api_access
    assert "API of acme is off" in granted.stderr  # a hint, not a failure
    ok("member", "revoke-api", "grace@example.com", "--org", "acme")
    assert not member(factory, "grace@example.com").api_access
    assert event_types(factory).count("member.updated") == 2


def test_grant_api_to_an_unknown_member(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    assert "no member with email 'ghost@example.com'" in failed("member", "grant-api", "ghost@example.com").stderr


def test_grant_api_to_a_removed_member_is_refused(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory)
    ok("member", "revoke-api", acme.member.email)
    ok("member", "remove", acme.member.email)

    assert "was removed" in failed("member", "grant-api", acme.member.email).stderr
    assert not member(factory, acme.member.email).api_access


def test_member_remove_cancels_future_bookings_and_revokes_tokens(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory)
    start = utcnow() + timedelta(days=1)
    with transaction(factory) as session:
        will = session.get_one(Member, acme.member.id)
        booking_id = bookings.create(session, will, start=start, end=start + timedelta(hours=8)).id

    ok("member", "remove", acme.member.email)

    assert member(factory, acme.member.email).status is MemberStatus.REMOVED
    with factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
        assert tokens.authenticate(session, acme.member_token) is None
        assert session.scalar(select(ApiToken.revoked_at).where(ApiToken.member_id == acme.member.id)) is not None


def test_member_remove_twice_changes_nothing_the_second_time(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory)
    ok("member", "remove", acme.member.email)
    events_before = count(factory, OutboxEvent)

    assert "already removed" in ok("member", "remove", acme.member.email).stdout
    assert count(factory, OutboxEvent) == events_before


def test_member_remove_keeps_the_last_admin(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory)

    assert "at least one active admin" in failed("member", "remove", acme.admin.email).stderr
    assert member(factory, acme.admin.email).status is MemberStatus.ACTIVE
    with factory() as session:
        assert tokens.authenticate(session, acme.admin_token) is not None


def test_member_remove_of_an_unknown_member(factory: sessionmaker[Session]) -> None:
    make_org(factory)
    assert "no member" in failed("member", "remove", "ghost@acme.example").stderr


def test_member_commands_only_see_their_organisation(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory, "Acme")
    make_org(factory, "Globex")

    assert "no member" in failed("member", "remove", acme.member.email, "--org", "globex").stderr
    with factory() as session:
        assert members.get(session, acme.organisation.id, acme.member.id).status is MemberStatus.ACTIVE


def test_member_restore_brings_a_removed_member_back_with_a_new_token(factory: sessionmaker[Session]) -> None:
    org = make_org(factory)
    start = utcnow() + timedelta(days=1)
    with transaction(factory) as session:
        booking_id = bookings.create(
            session,
            members.get(session, org.organisation.id, org.member.id),
            start=start,
            end=start + timedelta(hours=2),
        ).id
    ok("member", "remove", "will@acme.example")

    result = ok("member", "restore", "WILL@acme.example", "--org", "acme")

    assert "Restored will@acme.example (active): 1 booking(s) booked again; teams: none." in result.stdout
    secret = result.stdout.split("(shown once): ", 1)[1].split()[0]
    with factory() as session:
        assert tokens.authenticate(session, secret) is not None
        assert tokens.authenticate(session, org.member_token) is None
        assert session.get_one(Booking, booking_id).status is BookingStatus.BOOKED
    assert member(factory, "will@acme.example").status is MemberStatus.ACTIVE
    assert event_types(factory)[-1] == "membership.restored"


def test_member_restore_lists_what_did_not_come_back(factory: sessionmaker[Session]) -> None:
    org = make_org(factory)
    start = utcnow() + timedelta(days=1)
    with transaction(factory) as session:
        desk = desks.create(session, org.organisation.id, "11").id
        will = members.get(session, org.organisation.id, org.member.id)
        booking_id = bookings.create(session, will, start=start, end=start + timedelta(hours=2), desk_id=desk).id
    ok("member", "remove", "will@acme.example")
    with transaction(factory) as session:
        admin = members.get(session, org.organisation.id, org.admin.id)
        bookings.create(session, admin, start=start, end=start + timedelta(hours=1), desk_id=desk)

    result = ok("member", "restore", "will@acme.example")

    assert "0 booking(s) booked again" in result.stdout
    assert f"Not restored:\n  - booking {booking_id} on desk {desk}" in result.stdout
    assert "someone else booked the desk for that time meanwhile" in result.stdout


def test_member_restore_refuses_with_the_reason(factory: sessionmaker[Session]) -> None:
    make_org(factory)
    assert "not removed" in failed("member", "restore", "will@acme.example").stderr
    assert "no member" in failed("member", "restore", "nobody@acme.example").stderr
    ok("member", "remove", "will@acme.example")
    with transaction(factory) as session:
        removal = session.scalars(select(MemberRemoval)).one()
        removal.removed_at -= timedelta(days=30)
    refused = failed("member", "restore", "will@acme.example").stderr
    assert "can be undone for 30 days" in refused
    assert member(factory, "will@acme.example").status is MemberStatus.REMOVED
