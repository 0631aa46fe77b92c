"""The sync engine on both stores: records in, memberships, invitations, removals and teams out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.records import DirectoryGroup, DirectoryPage, DirectoryUser, RemovedUser
from store.columns import utcnow
from store.db import transaction
from store.models import (
    Booking,
    BookingStatus,
    Connection,
    ConnectionKind,
    DirectoryPolicy,
    Invitation,
    Member,
    MemberStatus,
    Role,
    Team,
)
from store.secret_box import SecretBox
from store.services import bookings, connections, desks, members, organisations, teams
from sync.directory.engine import apply_now, apply_round, redecide_everyone
from tests.conftest import Org, events, make_org

BOX = SecretBox([SecretBox.generate_key()])


def user(uid: str, name: str = "", **fields: object) -> DirectoryUser:
    values: dict[str, object] = {"username": f"{uid}@acme.example", "email": f"{uid}@acme.example"}
    values.update(fields)
    return DirectoryUser(external_id=uid, display_name=name or uid.title(), **values)  # type: ignore[arg-type]


def full(*users: DirectoryUser, groups: tuple[DirectoryGroup, ...] = (), cursor: str = "c1") -> list[DirectoryPage]:
    return [DirectoryPage(users=users, groups=groups, full_users=True, full_groups=True, cursor=cursor, last=True)]


def delta(
    *users: DirectoryUser,
    removed: tuple[str, ...] = (),
    groups: tuple[DirectoryGroup, ...] = (),
    cursor: str = "c2",
) -> list[DirectoryPage]:
    page = DirectoryPage(
        users=users, removed=tuple(RemovedUser(uid) for uid in removed), groups=groups, cursor=cursor, last=True
    )
    return [page]


@pytest.fixture
def acme(session_factory: sessionmaker[Session]) -> Org:
    return make_org(session_factory)


def connect(factory: sessionmaker[Session], org: Org, **settings: object) -> int:
    with transaction(factory) as session:
        connection, _ = connections.create(
            session,
            BOX,
            org.organisation.id,
            ConnectionKind.MICROSOFT,
            "Entra ID",
            settings={"tenant_id": "t", "client_id": "c", **settings},
            credentials={"client_secret": "s3cret"},
        )
        return connection.id


def member_states(factory: sessionmaker[Session], org: Org) -> dict[str, MemberStatus]:
    with factory() as session:
        rows = session.scalars(select(Member).where(Member.organisation_id == org.organisation.id))
        return {row.email: row.status for row in rows}


def event_types(factory: sessionmaker[Session], org: Org) -> list[str]:
    return [event.type for event in events(factory, org.organisation.id)]


def test_first_sync_invites_people_in_scope_and_leaves_out_the_rest(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme)
    pages = full(
        user("alice", "Alice Liddell"),
        user("bob"),
        user("carol", active=False),
        user("guest", guest=True),
        user("room", email=None, username="room@acme.example"),
    )
    tally, cursor = apply_round(session_factory, connection_id, pages)

    states = member_states(session_factory, acme)
    assert states["alice@acme.example"] is MemberStatus.INVITED
    assert states["bob@acme.example"] is MemberStatus.INVITED
    assert {"carol@acme.example", "guest@acme.example", "room@acme.example"}.isdisjoint(states)
    assert tally.counts["invited"] == 2
    assert tally.counts["seen"] == 5
    assert cursor == "c1"
    with session_factory() as session:
        invitation = session.scalars(select(Invitation).where(Invitation.email == "alice@acme.example")).one()
        assert invitation.source == "directory:microsoft"
        assert session.scalars(select(Member.display_name).where(Member.email == "alice@acme.example")).one() == (
            "Alice Liddell"
        )


def test_the_same_round_twice_changes_nothing_the_second_time(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme)
    pages = full(user("alice"), user("bob"), groups=(DirectoryGroup("g1", "Ops", added=frozenset({"alice"})),))
    apply_round(session_factory, connection_id, pages)
    before = event_types(session_factory, acme)

    tally, _ = apply_round(session_factory, connection_id, pages)

    assert event_types(session_factory, acme) == before
    assert tally.counts["invited"] == 0


def test_a_rename_updates_the_member(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("alice", "Alice")))

    tally, _ = apply_round(
        session_factory, connection_id, delta(user("alice", "Alice Smith", email="alice.smith@acme.example"))
    )

    assert tally.counts["updated"] == 1
    with session_factory() as session:
        member = session.scalars(select(Member).where(Member.email == "alice.smith@acme.example")).one()
        assert member.display_name == "Alice Smith"
    updated = [event for event in events(session_factory, acme.organisation.id) if event.type == "member.updated"]
    assert updated[-1].data["changes"] == {"display_name": "Alice Smith", "email": "alice.smith@acme.example"}


def test_leaving_removes_the_membership_cancels_future_bookings_and_keeps_history(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    with transaction(session_factory) as session:
        organisations.update_settings(
            session, session.get_one(type(acme.organisation), acme.organisation.id), directory_policy="auto_accept"
        )
        desk = desks.create(session, acme.organisation.id, "D1")
        desk_id = desk.id
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("alice")))
    start = utcnow() + timedelta(days=2)
    with transaction(session_factory) as session:
        alice = members.get_by_email(session, acme.organisation.id, "alice@acme.example")
        assert alice.status is MemberStatus.ACTIVE
        booking = bookings.create(session, alice, start=start, end=start + timedelta(hours=8), desk_id=desk_id)
        booking_id = booking.id

    tally, _ = apply_round(session_factory, connection_id, delta(removed=("alice",)))

    assert tally.counts["removed"] == 1
    assert member_states(session_factory, acme)["alice@acme.example"] is MemberStatus.REMOVED
    with session_factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
    removed = [event for event in events(session_factory, acme.organisation.id) if event.type == "membership.removed"]
    assert removed[-1].data["reason"] == "directory_offboarded"
    assert removed[-1].data["cancelled_bookings"] == 1


@pytest.mark.parametrize("change", ["disabled", "removed", "left_full_listing"])
def test_coming_back_invites_again(session_factory: sessionmaker[Session], acme: Org, change: str) -> None:
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("alice"), user("bob")))
    if change == "disabled":
        apply_round(session_factory, connection_id, delta(user("alice", active=False)))
    elif change == "removed":
        apply_round(session_factory, connection_id, delta(removed=("alice",)))
    else:
        apply_round(session_factory, connection_id, full(user("bob")))
    assert member_states(session_factory, acme)["alice@acme.example"] is MemberStatus.REMOVED
    assert member_states(session_factory, acme)["bob@acme.example"] is MemberStatus.INVITED

    tally, _ = apply_round(session_factory, connection_id, delta(user("alice")))

    assert tally.counts["restored"] == 1
    assert member_states(session_factory, acme)["alice@acme.example"] is MemberStatus.INVITED


def test_a_full_resync_removes_only_who_is_gone_and_reinvites_nobody(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("alice"), user("bob"), user("carol")))
    invited_before = event_types(session_factory, acme).count("membership.invited")

    tally, _ = apply_round(session_factory, connection_id, full(user("alice"), user("carol")))

    assert event_types(session_factory, acme).count("membership.invited") == invited_before
    assert tally.counts["removed"] == 1
    assert member_states(session_factory, acme)["bob@acme.example"] is MemberStatus.REMOVED


def test_people_added_by_hand_are_linked_not_invited_and_not_removed_when_out_of_scope(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme, scope={"domains": ["acme.example"]})
    # The admin (admin@acme.example) and William exist already; the directory knows William, disabled.
    apply_round(
        session_factory,
        connection_id,
        full(user("will", email="will@acme.example"), user("admin", active=False)),
    )
    states = member_states(session_factory, acme)
    assert states["admin@acme.example"] is MemberStatus.ACTIVE  # never brought in: left alone
    assert "membership.invited" not in event_types(session_factory, acme)


def test_the_last_admin_is_kept_with_a_note(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("admin"), user("will")))
    with transaction(session_factory) as session:
        will = members.get_by_email(session, acme.organisation.id, "will@acme.example")
        members.update(session, will, role=Role.MEMBER)

    tally, _ = apply_round(session_factory, connection_id, delta(user("admin", active=False)))

    assert member_states(session_factory, acme)["admin@acme.example"] is MemberStatus.ACTIVE
    assert tally.counts["skipped"] == 1
    assert any("kept admin@acme.example" in note for note in tally.notes)


def test_scope_by_group_follows_membership_changes(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme, scope={"groups": ["G-Office"]})
    office = DirectoryGroup("g-office", "Office", added=frozenset({"alice"}))
    apply_round(session_factory, connection_id, full(user("alice"), user("bob"), groups=(office,)))
    assert set(member_states(session_factory, acme)) >= {"alice@acme.example"}
    assert "bob@acme.example" not in member_states(session_factory, acme)

    moved = DirectoryGroup("g-office", "Office", added=frozenset({"bob"}), removed=frozenset({"alice"}))
    apply_round(session_factory, connection_id, delta(groups=(moved,)))

    states = member_states(session_factory, acme)
    assert states["bob@acme.example"] is MemberStatus.INVITED
    assert states["alice@acme.example"] is MemberStatus.REMOVED


def test_group_members_announced_in_slices_over_a_full_round(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme, scope={"groups": ["g1"]})
    pages = [
        DirectoryPage(users=(user("a"), user("b"), user("c")), full_users=True, full_groups=True),
        DirectoryPage(groups=(DirectoryGroup("g1", "One", added=frozenset({"a"})),), full_users=True, full_groups=True),
        DirectoryPage(
            groups=(DirectoryGroup("g1", "One", added=frozenset({"b"})),),
            full_users=True,
            full_groups=True,
            cursor="c",
            last=True,
        ),
    ]
    apply_round(session_factory, connection_id, pages)
    states = member_states(session_factory, acme)
    assert {"a@acme.example", "b@acme.example"} <= set(states)
    assert "c@acme.example" not in states

    # The next full listing no longer announces b in g1: b leaves the scope.
    apply_round(
        session_factory,
        connection_id,
        full(user("a"), user("b"), user("c"), groups=(DirectoryGroup("g1", "One", added=frozenset({"a"})),)),
    )
    assert member_states(session_factory, acme)["b@acme.example"] is MemberStatus.REMOVED


def test_scope_by_org_unit_and_domain(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme, scope={"org_units": ["/Staff"], "domains": ["acme.example"]})
    apply_round(
        session_factory,
        connection_id,
        full(
            user("a", org_unit="/Staff/London"),
            user("b", org_unit="/Staffing"),
            user("c", org_unit="/Staff", email="c@other.example"),
            user("d", org_unit="/Staff"),
        ),
    )
    assert set(member_states(session_factory, acme)) - {"admin@acme.example", "will@acme.example"} == {
        "a@acme.example",
        "d@acme.example",
    }


def test_guests_and_accounts_without_mailbox_when_asked(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme, scope={"include_guests": True, "include_without_mailbox": True})
    apply_round(
        session_factory,
        connection_id,
        full(user("guest", guest=True), user("nomail", email=None, username="NoMail@acme.example")),
    )
    assert {"guest@acme.example", "nomail@acme.example"} <= set(member_states(session_factory, acme))


def test_auto_accept_makes_members_at_once(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        organisation = session.get_one(type(acme.organisation), acme.organisation.id)
        organisation.directory_policy = DirectoryPolicy.AUTO_ACCEPT
    connection_id = connect(session_factory, acme)
    tally, _ = apply_round(session_factory, connection_id, full(user("alice")))
    assert member_states(session_factory, acme)["alice@acme.example"] is MemberStatus.ACTIVE
    assert tally.counts["added"] == 1
    assert "membership.invited" not in event_types(session_factory, acme)


def test_opted_in_groups_become_teams_kept_in_step(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme, team_groups=["g-eng"])
    eng = DirectoryGroup("g-eng", "Engineering", added=frozenset({"alice", "bob"}))
    other = DirectoryGroup("g-all", "Everyone", added=frozenset({"alice", "bob"}))
    apply_round(session_factory, connection_id, full(user("alice"), user("bob"), groups=(eng, other)))

    def team_members(name: str) -> set[str]:
        with session_factory() as session:
            team = teams.get_by_name(session, acme.organisation.id, name)
            return set(session.scalars(select(Member.email).where(Member.id.in_(teams.member_ids(session, team)))))

    assert team_members("Engineering") == {"alice@acme.example", "bob@acme.example"}
    with session_factory() as session:
        assert session.scalars(select(Team.name).where(Team.organisation_id == acme.organisation.id)).all() == [
            "Engineering"
        ]

    apply_round(
        session_factory,
        connection_id,
        delta(user("bob", active=False), groups=(DirectoryGroup("g-eng", "Eng", removed=frozenset()),)),
    )
    assert team_members("Eng") == {"alice@acme.example"}


def test_another_directory_still_claiming_a_member_keeps_them(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    first = connect(session_factory, acme)
    with transaction(session_factory) as session:
        second, _ = connections.create(session, BOX, acme.organisation.id, ConnectionKind.CSV, "HR export")
        second_id = second.id
    apply_round(session_factory, first, full(user("alice")))
    apply_round(session_factory, second_id, full(user("alice")))

    apply_round(session_factory, first, delta(removed=("alice",)))

    assert member_states(session_factory, acme)["alice@acme.example"] is MemberStatus.INVITED


def test_apply_now_and_redecide_after_a_scope_change(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme)
    with transaction(session_factory) as session:
        apply_now(session, connection_id, DirectoryPage(users=(user("alice"), user("bob", email="bob@else.example"))))
    assert {"alice@acme.example", "bob@else.example"} <= set(member_states(session_factory, acme))

    with transaction(session_factory) as session:
        connection = session.get_one(Connection, connection_id)
        connections.update_connection(session, BOX, connection, settings={"scope": {"domains": ["acme.example"]}})
        tally = redecide_everyone(session, connection_id)

    assert tally.counts["removed"] == 1
    assert member_states(session_factory, acme)["bob@else.example"] is MemberStatus.REMOVED


def test_a_deleted_group_empties_its_team_and_keeps_it(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme, team_groups=["*"])
    ops = DirectoryGroup("g-ops", "Ops", added=frozenset({"alice"}))
    apply_round(session_factory, connection_id, full(user("alice"), groups=(ops,)))

    apply_round(session_factory, connection_id, delta(groups=(DirectoryGroup("g-ops", "Ops", deleted=True),)))

    with session_factory() as session:
        team = teams.get_by_name(session, acme.organisation.id, "Ops")
        assert teams.member_ids(session, team) == []
    assert member_states(session_factory, acme)["alice@acme.example"] is MemberStatus.INVITED
