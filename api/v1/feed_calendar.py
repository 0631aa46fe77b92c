"""What a feed's URL serves: a member's (or a team's members') bookings as an ICS calendar.

From 30 days back to the end of the organisation's calendar window; bookings cancelled within the
last 30 days stay in as STATUS:CANCELLED, so subscribers drop them rather than keep a stale copy.
The bytes depend only on the bookings: DTSTAMP is the latest change among them (not the time of
the request) and SEQUENCE is the booking's revision (one more on every change, however close
together), so an unchanged feed has the same bytes, and so the same ETag, on every poll.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connectors.ics import render
from connectors.records import BookingEntry
from store.columns import utcnow
from store.models import Booking, BookingStatus, Desk, Feed, Member, MemberStatus, Organisation, Team
from store.services import calendars
from store.services.bookings import BookingFilter, filtered

HISTORY = timedelta(days=30)  # how far back bookings (and cancellations) are kept in a feed
# A feed is rendered whole on every poll that changed; a team feed past this many bookings keeps the
# first ones by start time (what a calendar shows first) rather than time out.
MAX_BOOKINGS = 10_000


@dataclass(frozen=True, slots=True)
class Served:
    """A feed's body and the ETag of exactly those bytes."""

    body: bytes
    etag: str


def owner_gone(session: Session, feed: Feed) -> bool:
    """A member's feed dies with their membership (as their tokens do)."""
    if feed.member_id is None:
        return False
    member = session.get(Member, feed.member_id)
    return member is None or member.status is MemberStatus.REMOVED


def serve(session: Session, feed: Feed, public_base_url: str, now: datetime | None = None) -> Served:
    """The feed's calendar now."""
    now = now or utcnow()
    organisation = session.get_one(Organisation, feed.organisation_id)
    since, until = now - HISTORY, calendars.window(organisation, now.date())[1]
    where = BookingFilter(member_id=feed.member_id, team_id=feed.team_id, ends_after=since, starts_before=until)
    query = (
        select(Booking, Desk, Member)
        .join(Member, Member.id == Booking.member_id)
        .outerjoin(Desk, Desk.id == Booking.desk_id)
        .where(or_(Booking.status != BookingStatus.CANCELLED, Booking.cancelled_at >= since))
        .order_by(Booking.start_at, Booking.id)
        .limit(MAX_BOOKINGS)
    )
    rows = session.execute(filtered(query, organisation.id, where)).all()
    team = feed.team_id is not None
    entries = [_entry(booking, desk, member, organisation.timezone, team=team) for booking, desk, member in rows]
    cancelled = {booking.id for booking, _, _ in rows if booking.status is BookingStatus.CANCELLED}
    stamp = max((booking.updated_at for booking, _, _ in rows), default=feed.rotated_at or feed.created_at)
    body = render(entries, name=_name(session, feed), domain=domain(public_base_url), cancelled=cancelled, stamp=stamp)
    return Served(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def domain(public_base_url: str) -> str:
    """The right-hand side of every UID: the installation's host, fixed as long as its address is."""
    return urlsplit(public_base_url).hostname or "deskbridge.invalid"


def _name(session: Session, feed: Feed) -> str:
    if feed.team_id is not None:
        return f"{session.get_one(Team, feed.team_id).name}: desk bookings"
    assert feed.member_id is not None
    return f"{session.get_one(Member, feed.member_id).username}: desk bookings"


def _entry(booking: Booking, desk: Desk | None, member: Member, timezone: str, *, team: bool) -> BookingEntry:
    # Worded as the calendar writer words the same booking in people's own calendars (worker.calendar.outbound).
    what = f"Desk {desk.label}" if desk is not None else "Office day"
    where = (
        [f"Desk {desk.label}", f"Floor {desk.floor}" if desk.floor else "", desk.zone, desk.building]
        if desk is not None
        else [booking.details]  # a calendar's office day keeps the office it named here
    )
    return BookingEntry(
        booking_id=booking.id,
        start=booking.start_at,
        end=booking.end_at,
        timezone=timezone,
        # In a team's feed every event is someone else's: say whose.
        title=f"{member.username}: {what}" if team else what,
        location=", ".join(part for part in where if part),
        office_label=desk.building if desk is not None else "",
        # Grows with every change, cancelling included: the database bumps it on every update of the row.
        sequence=booking.revision,
    )
