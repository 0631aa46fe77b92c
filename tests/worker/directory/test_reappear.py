"""A person a directory removed who reappears in it within the undo window is restored, not invited as a
stranger (issue 16, item 3), on both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Booking, BookingStatus, MemberRemoval, MemberStatus, Role
from store.services import bookings, desks, members, organisations, teams, tokens
from sync.directory.engine import Context, apply_round, plan_people, stage
from tests.conftest import Org, events, make_org
from tests.store.conftest import slot
from tests.worker.directory.test_engine import connect, delta, full, user


@pytest.fixture
def acme(session_factory: sessionmaker[Session]) -> Org:
    return make_org(session_factory)


def _join(factory: sessionmaker[Session], org: Org, connection_id: int) -> tuple[int, int, int]:
    """alice is brought in by the directory and accepts; she books a desk, is in a team and has a token."""
    apply_round(factory, connection_id, full(user("alice"), user("bob")))
    with transaction(factory) as session:
        alice = members.get_by_email(session, org.organisation.id, "alice@acme.example")
        alice.status = MemberStatus.ACTIVE  # as accepting her invitation makes her
        members.update(session, alice, api_access=True)
        tokens.create(session, alice, name="laptop")
        desk = desks.create(session, org.organisation.id, "7")
        booking = bookings.create(session, alice, start=slot(24)[0], end=slot(24)[1], desk_id=desk.id)
        team = teams.create(session, org.organisation.id, "Ops")
        teams.add_member(session, team, alice)
        return alice.id, booking.id, team.id


def _types(factory: sessionmaker[Session], org: Org, after: int) -> list[str]:
    return [event.type for event in events(factory, org.organisation.id) if event.seq > after]


def _last_seq(factory: sessionmaker[Session], org: Org) -> int:
    return events(factory, org.organisation.id)[-1].seq


def test_someone_back_within_the_window_is_restored_not_invited(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme)
    alice, booking_id, team_id = _join(session_factory, acme, connection_id)
    apply_round(session_factory, connection_id, delta(removed=("alice",)))
    with session_factory() as session:
        assert members.get(session, acme.organisation.id, alice).status is MemberStatus.REMOVED
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
    with transaction(session_factory) as session:  # someone tidies the team meanwhile
        team = teams.get(session, acme.organisation.id, team_id)
        teams.remove_member(session, team, members.get(session, acme.organisation.id, alice))
    mark = _last_seq(session_factory, acme)

    tally, _ = apply_round(session_factory, connection_id, delta(user("alice")))

    assert tally.counts["restored"] == 1
    assert tally.counts["invited"] == 0
    assert tally.people["restored"] == ["alice@acme.example"]
    assert any("token" in note and "not_issued" in note for note in tally.notes)
    with session_factory() as session:
        member = members.get(session, acme.organisation.id, alice)
        assert (member.status, member.api_access) == (MemberStatus.ACTIVE, True)
        assert session.get_one(Booking, booking_id).status is BookingStatus.BOOKED
        assert alice in teams.member_ids(session, teams.get(session, acme.organisation.id, team_id))
    new = _types(session_factory, acme, mark)
    assert "membership.invited" not in new
    assert new.count("membership.restored") == new.count("booking.restored") == 1
    restored = [e for e in events(session_factory, acme.organisation.id) if e.type == "membership.restored"][-1]
    assert restored.data["source"] == "directory:microsoft"
    assert [(item["kind"], item["reason"]) for item in restored.data["unrestored"]] == [("token", "not_issued")]


def test_the_plan_says_restored_within_the_window_and_invited_after_it(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme)
    alice, booking_id, _ = _join(session_factory, acme, connection_id)
    apply_round(session_factory, connection_id, full(user("bob")))  # left out of a full listing
    with session_factory() as session:  # the plan, staged and thrown away
        context = Context.load(session, connection_id)
        stage(session, context, delta(user("alice"))[0], context.connection.round)
        assert [p.action for p in plan_people(session, context, ["alice"], set())] == ["restored"]
        session.rollback()
    with transaction(session_factory) as session:  # the removal is 31 days old
        removal = session.scalars(select(MemberRemoval).where(MemberRemoval.member_id == alice)).one()
        removal.removed_at -= timedelta(days=31)

    tally, _ = apply_round(session_factory, connection_id, delta(user("alice")))

    assert (tally.counts["restored"], tally.counts["invited"]) == (0, 1)
    with session_factory() as session:
        assert members.get(session, acme.organisation.id, alice).status is MemberStatus.INVITED
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED


def test_auto_accept_restores_the_same_way(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        organisations.update_settings(
            session, organisations.get(session, acme.organisation.id), directory_policy="auto_accept"
        )
    connection_id = connect(session_factory, acme)
    alice, booking_id, _ = _join(session_factory, acme, connection_id)
    apply_round(session_factory, connection_id, delta(user("alice", active=False)))
    mark = _last_seq(session_factory, acme)

    tally, _ = apply_round(session_factory, connection_id, delta(user("alice")))

    assert (tally.counts["restored"], tally.counts["added"]) == (1, 0)
    assert "membership.added" not in _types(session_factory, acme, mark)
    with session_factory() as session:
        member = members.get(session, acme.organisation.id, alice)
        assert (member.status, member.api_access, member.role) == (MemberStatus.ACTIVE, True, Role.MEMBER)
        assert session.get_one(Booking, booking_id).status is BookingStatus.BOOKED
        assert session.scalars(select(MemberRemoval.restored_at).where(MemberRemoval.member_id == alice)).one()
