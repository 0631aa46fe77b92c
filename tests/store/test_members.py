from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.errors import Conflict, Invalid, NotFound
from store.models import MemberStatus, Role
from store.services import members
from tests.conftest import Org, make_org
from tests.store.conftest import Outbox, member_in, refused


def test_add_makes_active_member_with_normalised_email(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    with transaction(session_factory) as session:
        added = members.add(session, acme.organisation.id, "  Grace.Hopper@Acme.Example ", display_name=" Grace ")
    assert (added.email, added.display_name, added.role, added.status, added.api_access) == (
        "grace.hopper@acme.example",
        "Grace",
        Role.MEMBER,
        MemberStatus.ACTIVE,
        False,
    )
    assert outbox.only("membership.added") == {
        "member_id": added.id,
        "email": "grace.hopper@acme.example",
        "role": "member",
        "status": "active",
        "source": "cli",
    }


def test_add_existing_member_in_other_case_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Conflict) as attempt:
        members.add(attempt.session, acme.organisation.id, "WILL@acme.example")
    assert (attempt.error.code, attempt.error.field) == ("already_member", "email")


def test_same_email_in_another_organisation_is_a_separate_member(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    globex = make_org(session_factory, "Globex")
    with transaction(session_factory) as session:
        other = members.add(session, globex.organisation.id, "will@acme.example")
    assert other.id != acme.member.id


def test_add_with_bad_email_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    for bad in ("", "no-at-sign", "@acme.example", "a@localhost", "a b@acme.example"):
        with refused(session_factory, Invalid) as attempt:
            members.add(attempt.session, acme.organisation.id, bad)
        assert attempt.error.field == "email"


def test_add_restores_removed_member(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        members.remove(session, member_in(session, acme))
    outbox.skip()
    with transaction(session_factory) as session:
        restored = members.add(session, acme.organisation.id, "will@acme.example", role=Role.ADMIN)
    assert restored.id == acme.member.id
    assert (restored.status, restored.role, restored.removed_at) == (MemberStatus.ACTIVE, Role.ADMIN, None)
    assert outbox.types() == ["membership.added"]


def test_lookups_ignore_case(session_factory: sessionmaker[Session], acme: Org) -> None:
    with session_factory() as session:
        assert members.get_by_email(session, acme.organisation.id, " Will@ACME.example").id == acme.member.id
        assert members.find_by_email(session, acme.organisation.id, "nobody@acme.example") is None


def test_lookups_are_scoped_to_the_organisation(session_factory: sessionmaker[Session], acme: Org) -> None:
    globex = make_org(session_factory, "Globex")
    with refused(session_factory, NotFound) as attempt:
        members.get(attempt.session, globex.organisation.id, acme.member.id)
    with refused(session_factory, NotFound) as attempt:
        members.get_by_email(attempt.session, globex.organisation.id, "will@acme.example")
    assert attempt.error.field == "email"


def test_update_records_what_changed(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        members.update(session, member_in(session, acme), display_name=" Bill ", role=Role.ADMIN, api_access=False)
    with session_factory() as session:
        member = member_in(session, acme)
        assert (member.display_name, member.role, member.api_access) == ("Bill", Role.ADMIN, False)
    assert outbox.only("member.updated") == {
        "member_id": acme.member.id,
        "email": "will@acme.example",
        "changes": {"display_name": "Bill", "role": "admin", "api_access": False},
    }


def test_update_without_change_records_nothing(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    with transaction(session_factory) as session:
        members.update(session, member_in(session, acme), display_name="William", role=Role.MEMBER, api_access=True)
    assert outbox.new() == []


def test_last_admin_cannot_be_demoted(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Conflict) as attempt:
        members.update(attempt.session, member_in(attempt.session, acme, "admin"), role=Role.MEMBER)
    assert attempt.error.code == "last_admin"


def test_admin_can_be_demoted_while_another_remains(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    with transaction(session_factory) as session:
        members.update(session, member_in(session, acme), role=Role.ADMIN)
        members.update(session, member_in(session, acme, "admin"), role=Role.MEMBER)
    with session_factory() as session:
        assert member_in(session, acme, "admin").role is Role.MEMBER
    assert outbox.types() == ["member.updated", "member.updated"]


def test_removed_admin_does_not_count_as_remaining_admin(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        members.add(session, acme.organisation.id, "old@acme.example", role=Role.ADMIN)
        members.remove(session, members.get_by_email(session, acme.organisation.id, "old@acme.example"))
    with refused(session_factory, Conflict) as attempt:
        members.update(attempt.session, member_in(attempt.session, acme, "admin"), role=Role.MEMBER)
    assert attempt.error.code == "last_admin"


def test_username_falls_back_to_local_part(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        nameless = members.add(session, acme.organisation.id, "ghost@acme.example")
    assert (nameless.username, acme.member.username) == ("ghost", "William")
