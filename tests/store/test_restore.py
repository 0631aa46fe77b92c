"""Undoing a removal (issue 16, item 3): what a removal records, and a restore from it, on both stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import make_engine, make_session_factory, transaction
from store.errors import Conflict, Invalid
from store.models import (
    LIVE_STATUSES,
    ApiToken,
    Booking,
    BookingStatus,
    Invitation,
    InvitationStatus,
    MemberRemoval,
    MemberStatus,
    TeamMembership,
)
from store.services import bookings, desks, members, organisations, restores, teams, tokens
from tests.conftest import Org
from tests.store.conftest import Outbox, book, live_tokens, load_booking, make_desk, member_in, refused, slot


def _remove(factory: sessionmaker[Session], org: Org, who: str = "member") -> None:
    with transaction(factory) as session:
        assert members.remove(session, member_in(session, org, who))


def _restore(factory: sessionmaker[Session], org: Org, **options: object) -> restores.Restored:
    with transaction(factory) as session:
        return restores.restore(session, member_in(session, org), **options)  # type: ignore[arg-type]


def _team(factory: sessionmaker[Session], org: Org, name: str) -> int:
    with transaction(factory) as session:
        team = teams.create(session, org.organisation.id, name)
        teams.add_member(session, team, member_in(session, org))
        return team.id


def _removal(factory: sessionmaker[Session], member_id: int) -> MemberRemoval:
    with factory() as session:
        return session.scalars(select(MemberRemoval).where(MemberRemoval.member_id == member_id)).one()


def test_a_removal_records_what_it_takes_in_its_transaction(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    past = book(session_factory, acme, *slot(-5))
    future = book(session_factory, acme, *slot(24), desk_id=desk)
    ops = _team(session_factory, acme, "Ops")
    with transaction(session_factory) as session:
        revoked_before, _ = tokens.create(session, member_in(session, acme), name="old")
        tokens.revoke(session, revoked_before)
        second, _ = tokens.create(session, member_in(session, acme), name="laptop")
    with session_factory() as session:
        first = live_tokens(session, acme.organisation.id, acme.member.id)[0].id

    _remove(session_factory, acme)

    removal = _removal(session_factory, acme.member.id)
    assert removal.organisation_id == acme.organisation.id
    assert (removal.status_before, removal.api_access, removal.reason) == (MemberStatus.ACTIVE, True, "member_removed")
    assert removal.teams == [{"id": ops, "name": "Ops"}]
    assert removal.token_ids == [first, second.id]  # not the one revoked before
    assert removal.booking_ids == [future]  # not the past one
    assert past not in removal.booking_ids
    assert removal.restored_at is None
    with session_factory() as session:
        assert removal.removed_at == member_in(session, acme).removed_at


def test_a_refused_removal_records_nothing(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Conflict) as attempt:  # the last admin: the removal rolls back, its record too
        members.remove(attempt.session, member_in(attempt.session, acme, "admin"))
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(MemberRemoval)) == 0


def test_remove_many_records_each_member(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    future = book(session_factory, acme, *slot(24), desk_id=desk)
    with transaction(session_factory) as session:
        other = members.add(session, acme.organisation.id, "eve@acme.example")
        members.remove_many(session, [member_in(session, acme), other], reason="directory_offboarded")
    assert _removal(session_factory, acme.member.id).booking_ids == [future]
    assert _removal(session_factory, acme.member.id).reason == "directory_offboarded"
    assert _removal(session_factory, acme.member.id).token_ids != []
    assert _removal(session_factory, other.id).booking_ids == []
    assert _removal(session_factory, other.id).api_access is False


def test_restore_brings_everything_back(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    desk = make_desk(session_factory, acme)
    running = book(session_factory, acme, *slot(-1, 2), desk_id=desk)
    future = book(session_factory, acme, *slot(24))
    ops = _team(session_factory, acme, "Ops")
    with transaction(session_factory) as session:
        bookings.check_in(session, bookings.get(session, acme.organisation.id, running))
    _remove(session_factory, acme)
    with transaction(session_factory) as session:  # a directory's mirror takes them out of its team
        teams.remove_member(session, teams.get(session, acme.organisation.id, ops), member_in(session, acme))
    outbox.skip()

    done = _restore(session_factory, acme)

    assert done.unrestored == []
    assert [team.id for team in done.teams] == [ops]
    assert [booking.id for booking in done.bookings] == [running, future]
    assert load_booking(session_factory, running).status is BookingStatus.CHECKED_IN  # as it was
    assert load_booking(session_factory, future).status is BookingStatus.BOOKED
    assert load_booking(session_factory, future).cancellation_reason is None
    with transaction(session_factory) as session:
        member = member_in(session, acme)
        assert (member.status, member.api_access, member.removed_at) == (MemberStatus.ACTIVE, True, None)
        assert session.get(TeamMembership, (ops, member.id)) is not None
        assert tokens.authenticate(session, acme.member_token) is None  # the old token stays revoked
        [(token, secret)] = done.tokens
        caller = tokens.authenticate(session, secret)
        assert caller is not None
        assert caller.member.id == acme.member.id
        assert [kept.id for kept in live_tokens(session, acme.organisation.id, acme.member.id)] == [token.id]
        assert _removal(session_factory, acme.member.id).restored_at is not None
    new = outbox.new()
    assert [event.type for event in new] == [
        "team.updated",
        "api_token.created",
        "booking.restored",
        "booking.restored",
        "membership.restored",
    ]
    assert new[2].data["booking_id"] == running
    assert new[2].data["status"] == "checked_in"
    assert new[-1].data == {
        "member_id": acme.member.id,
        "email": "will@acme.example",
        "role": "member",
        "status": "active",
        "source": "api",
        "removed_at": new[-1].data["removed_at"],
        "restored_bookings": 2,
        "unrestored": [],
    }
    assert secret not in str([event.data for event in new])


def test_restore_lists_what_could_not_come_back(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    taken_desk = make_desk(session_factory, acme, "taken")
    gone_desk = make_desk(session_factory, acme, "gone")
    free_desk = make_desk(session_factory, acme, "free")
    ending = book(session_factory, acme, *slot(1), desk_id=free_desk)
    taken = book(session_factory, acme, *slot(24), desk_id=taken_desk)
    gone = book(session_factory, acme, *slot(48), desk_id=gone_desk)
    kept = book(session_factory, acme, *slot(72), desk_id=free_desk)
    doomed = _team(session_factory, acme, "Doomed")
    ops = _team(session_factory, acme, "Ops")
    _remove(session_factory, acme)
    book(session_factory, acme, *slot(24, 0.5), desk_id=taken_desk, who="admin")  # overlaps the first
    with transaction(session_factory) as session:
        desks.update(session, desks.get(session, acme.organisation.id, gone_desk), active=False)
        teams.delete(session, teams.get(session, acme.organisation.id, doomed))
    outbox.skip()

    done = _restore(session_factory, acme, now=utcnow() + timedelta(hours=3))  # the first booking is over then

    assert [booking.id for booking in done.bookings] == [kept]
    assert [team.id for team in done.teams] == [ops]
    assert [(item.kind, item.id, item.reason) for item in done.unrestored] == [
        ("team", doomed, "team_deleted"),
        ("booking", ending, "ended"),
        ("booking", taken, "desk_taken"),
        ("booking", gone, "desk_removed"),
    ]
    assert "'Doomed'" in done.unrestored[0].detail
    assert "someone else booked the desk" in done.unrestored[2].detail
    for booking_id in (ending, taken, gone):
        assert load_booking(session_factory, booking_id).status is BookingStatus.CANCELLED
    assert load_booking(session_factory, kept).status is BookingStatus.BOOKED
    restored = [event for event in outbox.new() if event.type.endswith("restored")]
    assert [event.type for event in restored] == ["booking.restored", "membership.restored"]
    assert restored[-1].data["restored_bookings"] == 1
    assert restored[-1].data["unrestored"] == [
        {"kind": "team", "id": doomed, "reason": "team_deleted"},
        {"kind": "booking", "id": ending, "reason": "ended"},
        {"kind": "booking", "id": taken, "reason": "desk_taken"},
        {"kind": "booking", "id": gone, "reason": "desk_removed"},
    ]


def test_a_directory_restore_issues_no_token(session_factory: sessionmaker[Session], acme: Org) -> None:
    _remove(session_factory, acme)
    done = _restore(session_factory, acme, source="directory:microsoft", issue_tokens=False)
    assert done.tokens == []
    assert [(item.kind, item.reason) for item in done.unrestored] == [("token", "not_issued")]
    with session_factory() as session:
        assert live_tokens(session, acme.organisation.id, acme.member.id) == []
        assert member_in(session, acme).status is MemberStatus.ACTIVE


def test_restoring_someone_removed_while_invited_invites_them_again(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    with transaction(session_factory) as session:
        first = members.invite(session, acme.organisation.id, "new@acme.example").id
        member = members.get_by_email(session, acme.organisation.id, "new@acme.example")
        members.remove(session, member)
        member_id = member.id
    outbox.skip()
    with transaction(session_factory) as session:
        restores.restore(session, members.get(session, acme.organisation.id, member_id))
    with session_factory() as session:
        assert members.get(session, acme.organisation.id, member_id).status is MemberStatus.INVITED
        pending = session.scalars(select(Invitation).where(Invitation.member_id == member_id)).all()
        assert [(i.id == first, i.status) for i in pending] == [
            (True, InvitationStatus.REVOKED),
            (False, InvitationStatus.PENDING),
        ]
    assert outbox.types() == ["membership.invited", "membership.restored"]


def _undo_days(factory: sessionmaker[Session], org: Org, days: int) -> None:
    with transaction(factory) as session:
        organisations.update_settings(
            session, organisations.get(session, org.organisation.id), offboarding_undo_days=days
        )


def test_past_the_window_nothing_is_restored(session_factory: sessionmaker[Session], acme: Org) -> None:
    book(session_factory, acme, *slot(24 * 40))
    _remove(session_factory, acme)
    removed_at = _removal(session_factory, acme.member.id).removed_at

    with refused(session_factory, Conflict) as attempt:
        restores.restore(attempt.session, member_in(attempt.session, acme), now=removed_at + timedelta(days=30))
    assert attempt.error.code == "undo_expired"
    assert "can be undone for 30 days" in attempt.error.message
    assert "offboarding_undo_days" in attempt.error.message
    with session_factory() as session:
        assert restores.undoable(session, member_in(session, acme), removed_at + timedelta(days=30)) is None
        assert restores.undoable(session, member_in(session, acme), removed_at + timedelta(days=29)) is not None

    _undo_days(session_factory, acme, 45)  # the setting as it is now decides
    done = _restore(session_factory, acme, now=removed_at + timedelta(days=30))
    assert len(done.bookings) == 1


def test_an_undo_window_of_zero_days_undoes_nothing(session_factory: sessionmaker[Session], acme: Org) -> None:
    _undo_days(session_factory, acme, 0)
    _remove(session_factory, acme)
    with refused(session_factory, Conflict) as attempt:
        restores.restore(attempt.session, member_in(attempt.session, acme))
    assert attempt.error.code == "undo_expired"


@pytest.mark.parametrize("days", [-1, 366])
def test_the_undo_window_is_validated(session_factory: sessionmaker[Session], acme: Org, days: int) -> None:
    with refused(session_factory, Invalid) as attempt:
        organisations.update_settings(
            attempt.session, organisations.get(attempt.session, acme.organisation.id), offboarding_undo_days=days
        )
    assert attempt.error.field == "offboarding_undo_days"
    assert "from 0" in attempt.error.message


def test_the_undo_window_defaults_to_30_days_and_its_change_is_an_event(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    with session_factory() as session:
        assert organisations.get(session, acme.organisation.id).offboarding_undo_days == 30
    _undo_days(session_factory, acme, 7)
    assert outbox.only("organisation.updated") == {"organisation_id": acme.organisation.id, "offboarding_undo_days": 7}


def test_only_a_removed_member_is_restored(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Conflict) as attempt:
        restores.restore(attempt.session, member_in(attempt.session, acme))
    assert attempt.error.code == "not_removed"

    _remove(session_factory, acme)
    _restore(session_factory, acme)
    with refused(session_factory, Conflict) as attempt:  # twice: the second finds them active
        restores.restore(attempt.session, member_in(attempt.session, acme))
    assert attempt.error.code == "not_removed"


def test_a_removal_without_a_record_cannot_be_undone(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:  # withdrawing an invitation removes without a removal
        invitation = members.invite(session, acme.organisation.id, "maybe@acme.example")
        members.revoke_invitation(session, invitation)
    with refused(session_factory, Conflict) as attempt:
        member = members.get_by_email(attempt.session, acme.organisation.id, "maybe@acme.example")
        restores.restore(attempt.session, member)
    assert attempt.error.code == "nothing_to_undo"


def test_the_last_removal_is_the_one_undone(session_factory: sessionmaker[Session], acme: Org) -> None:
    first = book(session_factory, acme, *slot(24))
    _remove(session_factory, acme)
    with transaction(session_factory) as session:  # added again by hand, then removed again
        members.add(session, acme.organisation.id, "will@acme.example")
    second = book(session_factory, acme, *slot(48))
    _remove(session_factory, acme)

    done = _restore(session_factory, acme)

    assert [booking.id for booking in done.bookings] == [second]
    assert load_booking(session_factory, first).status is BookingStatus.CANCELLED


# --- a restore racing a booking of the same desk and time --------------------------------------------------

PAIRS = 8


@pytest.fixture
def racing(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions with a connection for each racer, so that they really run at once."""
    pooled = make_engine(engine.url.render_as_string(hide_password=False), pool_size=2 * PAIRS, max_overflow=0)
    yield make_session_factory(pooled)
    pooled.dispose()


def test_a_restore_and_a_booking_of_the_same_desk_never_both_win(
    session_factory: sessionmaker[Session], racing: sessionmaker[Session], acme: Org
) -> None:
    """PAIRS members each removed with a booking of their own desk; each restore races another member
    booking that desk at that time. Each desk ends with exactly one live booking for the slot, and the
    loser is told: a restore that lost lists `desk_taken`, a booking that lost is a Conflict."""
    start: datetime = slot(24)[0]
    end = start + timedelta(hours=8)
    with transaction(session_factory) as session:
        leaving = [members.add(session, acme.organisation.id, f"leaver{n}@acme.example").id for n in range(PAIRS)]
        rivals = [members.add(session, acme.organisation.id, f"rival{n}@acme.example").id for n in range(PAIRS)]
        desk_ids = [desks.create(session, acme.organisation.id, f"R{n}").id for n in range(PAIRS)]
    with transaction(session_factory) as session:
        for member_id, desk_id in zip(leaving, desk_ids, strict=True):
            person = members.get(session, acme.organisation.id, member_id)
            bookings.create(session, person, start=start, end=end, desk_id=desk_id)
            members.remove(session, person)
    barrier = threading.Barrier(2 * PAIRS)

    def restore(index: int) -> str:
        with racing() as session:
            person = members.get(session, acme.organisation.id, leaving[index])
            barrier.wait(timeout=60)
            done = restores.restore(session, person)
            session.commit()
            return "restored" if done.bookings else done.unrestored[0].reason

    def book_it(index: int) -> str:
        with racing() as session:
            person = members.get(session, acme.organisation.id, rivals[index])
            barrier.wait(timeout=60)
            try:
                bookings.create(session, person, start=start, end=end, desk_id=desk_ids[index])
                session.commit()
            except Conflict as conflict:
                session.rollback()
                return conflict.code
            return "booked"

    with ThreadPoolExecutor(2 * PAIRS) as pool:
        restored = [pool.submit(restore, n) for n in range(PAIRS)]
        booked = [pool.submit(book_it, n) for n in range(PAIRS)]
        outcomes = [(r.result(), b.result()) for r, b in zip(restored, booked, strict=True)]

    for outcome in outcomes:
        assert outcome in {("restored", "desk_unavailable"), ("desk_taken", "booked")}, outcomes
    with session_factory() as session:
        for desk_id in desk_ids:
            live = session.scalar(
                select(func.count())
                .select_from(Booking)
                .where(Booking.desk_id == desk_id, Booking.status.in_(LIVE_STATUSES))
            )
            assert live == 1
        for member_id in leaving:  # every restore went through, whatever its booking's fate
            assert members.get(session, acme.organisation.id, member_id).status is MemberStatus.ACTIVE
        assert session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))) >= 2
