"""A person a SCIM client deletes or deactivates, then creates or activates again within the undo window, is
restored as they were, not invited as a stranger (issue 16, item 3), on both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Booking, BookingStatus, MemberStatus
from store.services import bookings, members
from tests.api.scim.conftest import Scim, user_body
from tests.conftest import events


@pytest.fixture
def api_factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Every test here on SQLite and on PostgreSQL."""
    return session_factory


def _accepted_with_a_booking(factory: sessionmaker[Session], scim: Scim) -> tuple[str, int]:
    """alice is created by SCIM, joins (active) and books tomorrow."""
    created = scim.post("/Users", user_body("alice"))
    assert created.status_code == 201, created.text
    start = utcnow() + timedelta(days=1)
    with transaction(factory) as session:
        alice = members.get_by_email(session, scim.org.organisation.id, "alice@acme.example")
        alice.status = MemberStatus.ACTIVE  # as accepting the invitation makes her
        booking = bookings.create(session, alice, start=start, end=start + timedelta(hours=8))
        return created.json()["id"], booking.id


def _state(factory: sessionmaker[Session], scim: Scim, booking_id: int) -> tuple[MemberStatus, BookingStatus]:
    with factory() as session:
        alice = members.get_by_email(session, scim.org.organisation.id, "alice@acme.example")
        return alice.status, session.get_one(Booking, booking_id).status


def _types(factory: sessionmaker[Session], scim: Scim) -> list[str]:
    return [event.type for event in events(factory, scim.org.organisation.id)]


def test_deleted_then_created_again_is_restored(api_factory: sessionmaker[Session], scim: Scim) -> None:
    user_id, booking_id = _accepted_with_a_booking(api_factory, scim)
    assert scim.delete(f"/Users/{user_id}").status_code == 204
    assert _state(api_factory, scim, booking_id) == (MemberStatus.REMOVED, BookingStatus.CANCELLED)
    invited = _types(api_factory, scim).count("membership.invited")

    again = scim.post("/Users", user_body("alice"))

    assert again.status_code == 201, again.text
    assert _state(api_factory, scim, booking_id) == (MemberStatus.ACTIVE, BookingStatus.BOOKED)
    assert _types(api_factory, scim).count("membership.invited") == invited  # not invited as a stranger
    assert _types(api_factory, scim)[-1] == "membership.restored"


def test_deactivated_then_activated_is_restored(api_factory: sessionmaker[Session], scim: Scim) -> None:
    user_id, booking_id = _accepted_with_a_booking(api_factory, scim)
    off = {"op": "replace", "path": "active", "value": False}
    assert scim.patch(f"/Users/{user_id}", off).status_code == 200
    assert _state(api_factory, scim, booking_id) == (MemberStatus.REMOVED, BookingStatus.CANCELLED)

    on = scim.patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": True})

    assert on.status_code == 200, on.text
    assert on.json()["active"] is True
    assert _state(api_factory, scim, booking_id) == (MemberStatus.ACTIVE, BookingStatus.BOOKED)
    assert "booking.restored" in _types(api_factory, scim)
