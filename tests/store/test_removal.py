from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.errors import Conflict, NotAllowed
from store.models import Booking, BookingStatus, Invitation, InvitationStatus, MemberStatus
from store.services import bookings, members, tokens
from tests.conftest import Org
from tests.store.conftest import Outbox, book, live_tokens, load_booking, make_desk, member_in, refused, slot


def _remove(factory: sessionmaker[Session], org: Org, who: str = "member") -> bool:
    with transaction(factory) as session:
        return members.remove(session, member_in(session, org, who))


def test_removal_cancels_future_and_running_bookings_and_keeps_the_past(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    desk = make_desk(session_factory, acme)
    past = book(session_factory, acme, *slot(-5), desk_id=desk)
    running = book(session_factory, acme, *slot(-1, 2), desk_id=desk)
    future = book(session_factory, acme, *slot(24))
    others = book(session_factory, acme, *slot(48), desk_id=desk, who="admin")
    outbox.skip()

    assert _remove(session_factory, acme) is True

    assert load_booking(session_factory, past).status is BookingStatus.BOOKED
    assert load_booking(session_factory, others).status is BookingStatus.BOOKED
    for booking_id in (running, future):
        booking = load_booking(session_factory, booking_id)
        assert (booking.status, booking.cancellation_reason) == (BookingStatus.CANCELLED, "member_removed")
        assert booking.cancelled_at is not None
    new = outbox.new()
    assert [event.type for event in new] == ["booking.cancelled", "booking.cancelled", "membership.removed"]
    assert [event.data["booking_id"] for event in new[:2]] == [running, future]
    for event in new[:2]:
        assert event.data["reason"] == "member_removed"
        assert event.data["status"] == "cancelled"
        assert event.data["member_id"] == acme.member.id
    assert new[2].data == {
        "member_id": acme.member.id,
        "email": "will@acme.example",
        "role": "member",
        "status": "removed",
        "reason": "member_removed",
        "cancelled_bookings": 2,
    }


def test_removal_cancels_a_checked_in_booking(session_factory: sessionmaker[Session], acme: Org) -> None:
    booking_id = book(session_factory, acme, *slot(-1, 2))
    with transaction(session_factory) as session:
        bookings.check_in(session, bookings.get(session, acme.organisation.id, booking_id))
    _remove(session_factory, acme)
    assert load_booking(session_factory, booking_id).status is BookingStatus.CANCELLED


def test_removal_keeps_the_member_row(session_factory: sessionmaker[Session], acme: Org) -> None:
    book(session_factory, acme, *slot(-5))
    _remove(session_factory, acme)
    with session_factory() as session:
        member = member_in(session, acme)
        assert member.status is MemberStatus.REMOVED
        assert member.removed_at is not None
        assert len(session.scalars(select(Booking).where(Booking.member_id == member.id)).all()) == 1


def test_removal_revokes_api_tokens(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        assert tokens.authenticate(session, acme.member_token) is not None
    _remove(session_factory, acme)
    with transaction(session_factory) as session:
        assert tokens.authenticate(session, acme.member_token) is None
        assert live_tokens(session, acme.organisation.id, acme.member.id) == []
        assert tokens.authenticate(session, acme.admin_token) is not None


def test_removal_revokes_pending_invitations(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        invitation_id = members.invite(session, acme.organisation.id, "new@acme.example").id
        token = members.issue_invitation_token(session, session.get_one(Invitation, invitation_id))
    assert token is not None
    with transaction(session_factory) as session:
        removed = members.remove(session, members.get_by_email(session, acme.organisation.id, "new@acme.example"))
    assert removed is True
    with session_factory() as session:
        assert session.get_one(Invitation, invitation_id).status is InvitationStatus.REVOKED
    with refused(session_factory, NotAllowed) as attempt:
        members.accept_invitation(attempt.session, token)


def test_removed_member_cannot_book(session_factory: sessionmaker[Session], acme: Org) -> None:
    _remove(session_factory, acme)
    with refused(session_factory, NotAllowed) as attempt:
        bookings.create(attempt.session, member_in(attempt.session, acme), start=slot(2)[0], end=slot(2)[1])
    assert attempt.error.field == "member_id"


def test_removing_twice_changes_nothing(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    assert _remove(session_factory, acme) is True
    outbox.skip()
    assert _remove(session_factory, acme) is False
    assert outbox.new() == []


def test_last_admin_cannot_be_removed(session_factory: sessionmaker[Session], acme: Org) -> None:
    book(session_factory, acme, *slot(3), who="admin")
    with refused(session_factory, Conflict) as attempt:
        members.remove(attempt.session, member_in(attempt.session, acme, "admin"))
    assert attempt.error.code == "last_admin"


def test_invited_member_can_be_removed(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        members.invite(session, acme.organisation.id, "maybe@acme.example")
    outbox.skip()
    with transaction(session_factory) as session:
        assert members.remove(session, members.get_by_email(session, acme.organisation.id, "maybe@acme.example"))
    assert outbox.only("membership.removed")["cancelled_bookings"] == 0
