"""Undoing a removal: a removed member brought back as the removal found them.

Within the organisation's `offboarding_undo_days` of their last removal (store.services.removals
kept what it took away), `restore` makes the membership what it was (active, or invited again),
with the API access flag as it was, puts them back in the teams that still exist, issues a new token
for each one the removal revoked (the old ones stay revoked: their secrets may have leaked with the
person), and books again each cancelled booking that has not ended and whose desk and time are still
free. Whatever cannot come back is listed with the reason; the rest is restored all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import false, select, update
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.errors import Conflict, NotAllowed
from store.models import ApiToken, Booking, BookingStatus, Desk, Member, MemberRemoval, MemberStatus, Team
from store.services import bookings, members, organisations, removals, teams, tokens
from store.sql import among

Kind = Literal["booking", "team", "token"]
Reason = Literal["ended", "desk_taken", "desk_removed", "member_busy", "not_cancelled", "team_deleted", "not_issued"]
# Why something could not be restored: the reasons an answer names, with what each means.
REASONS: dict[Reason, str] = {
    "ended": "the booking ended before the restore",
    "desk_taken": "someone else booked the desk for that time meanwhile",
    "desk_removed": "the desk was deactivated",
    "member_busy": "the member has another booking at that time",
    "not_cancelled": "the booking is no longer cancelled",
    "team_deleted": "the team was deleted",
    "not_issued": "a directory's restore shows no one a token: the member (or an admin) makes new ones",
}


@dataclass(frozen=True)
class Unrestored:
    """One thing the removal took that did not come back, and why (a key of REASONS)."""

    kind: Kind
    id: int
    reason: Reason
    detail: str


@dataclass
class Restored:
    """What a restore brought back; `tokens` hold their secrets, to be shown this once."""

    member: Member
    removal: MemberRemoval
    teams: list[Team] = field(default_factory=list)
    tokens: list[tuple[ApiToken, str]] = field(default_factory=list)
    bookings: list[Booking] = field(default_factory=list)
    unrestored: list[Unrestored] = field(default_factory=list)


def undoable(session: Session, member: Member, now: datetime | None = None) -> MemberRemoval | None:
    """The removal `restore` would undo for this member now, or None (not removed, no record, too late)."""
    if member.status is not MemberStatus.REMOVED:
        return None
    removal = removals.latest(session, member.id)
    if removal is None or removal.restored_at is not None:
        return None
    organisation = organisations.get(session, member.organisation_id)
    return removal if (now or utcnow()) < removals.undo_ends(removal, organisation) else None


def restore(
    session: Session, member: Member, *, source: str = "api", issue_tokens: bool = True, now: datetime | None = None
) -> Restored:
    """Undo the member's last removal; records `booking.restored` for each booking booked again (and
    `team.updated`, `api_token.created`), then `membership.restored`.

    Conflict (`not_removed`) for a member who is not removed; (`nothing_to_undo`) for a removal made
    before removals were recorded; (`undo_expired`) once the organisation's undo window has passed.
    `issue_tokens` False (a directory bringing the person back): no token is made, since no one would
    see its secret; the answer lists each as `not_issued`.
    """
    now = now or utcnow()
    _hold(session, member)
    if member.status is not MemberStatus.REMOVED:
        raise Conflict(f"{member.email} is {member.status.value}, not removed: nothing to restore", code="not_removed")
    removal = removals.latest(session, member.id)
    if removal is None or removal.restored_at is not None:
        raise Conflict(
            f"{member.email} was removed before removals could be undone; invite or add them again",
            code="nothing_to_undo",
        )
    organisation = organisations.get(session, member.organisation_id)
    ends = removals.undo_ends(removal, organisation)
    if now >= ends:
        days = organisation.offboarding_undo_days
        raise Conflict(
            f"{member.email} was removed on {removal.removed_at:%Y-%m-%d %H:%M} UTC; a removal can be undone for "
            f"{days} day{'s' if days != 1 else ''} (the organisation's offboarding_undo_days), so until "
            f"{ends:%Y-%m-%d %H:%M} UTC. Invite or add them again instead.",
            code="undo_expired",
        )
    removal.restored_at = now
    done = Restored(member=member, removal=removal)
    _membership(session, member, removal, source)
    _teams(session, member, removal, done)
    _tokens(session, member, removal, done, issue_tokens)
    _bookings(session, removal, done, now)
    outbox.record(
        session,
        member.organisation_id,
        "membership.restored",
        {
            "member_id": member.id,
            "email": member.email,
            "role": member.role,
            "status": member.status,
            "source": source,
            "removed_at": removal.removed_at,
            "restored_bookings": len(done.bookings),
            "unrestored": [{"kind": item.kind, "id": item.id, "reason": item.reason} for item in done.unrestored],
        },
    )
    return done


def _hold(session: Session, member: Member) -> None:
    """Make the member's restore one step: no other restore (or removal) of them runs meanwhile.

    PostgreSQL: the member's row locked, and read again as it is now. SQLite: the database's write
    lock taken before anything is read (SQLite locks from the first write on; an update that matches
    nothing begins it), so what this transaction reads is what it writes over.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(MemberRemoval).where(false()).values(reason=MemberRemoval.reason))
        session.refresh(member)
        return
    session.scalar(
        select(Member).where(Member.id == member.id).with_for_update().execution_options(populate_existing=True)
    )


def _membership(session: Session, member: Member, removal: MemberRemoval, source: str) -> None:
    member.api_access = removal.api_access
    if removal.status_before is MemberStatus.INVITED:  # never joined: invited again, as they were
        members.invite(session, member.organisation_id, member.email, role=member.role, source=source)
        return
    member.status = MemberStatus.ACTIVE
    member.removed_at = None
    session.flush()


def _teams(session: Session, member: Member, removal: MemberRemoval, done: Restored) -> None:
    for kept in removal.teams:
        team = session.get(Team, kept["id"])
        if team is None or team.organisation_id != member.organisation_id:
            done.unrestored.append(Unrestored("team", kept["id"], "team_deleted", f"team {kept['name']!r} was deleted"))
            continue
        teams.add_member(session, team, member)  # False when a team they were left in: in it either way
        done.teams.append(team)


def _tokens(session: Session, member: Member, removal: MemberRemoval, done: Restored, issue: bool) -> None:
    if not removal.token_ids:
        return
    old = session.scalars(
        select(ApiToken).where(among(session, ApiToken.id, removal.token_ids)).order_by(ApiToken.id)
    ).all()
    for token in old:
        if not issue:
            detail = f"token {token.prefix}… stays revoked; {REASONS['not_issued']}"
            done.unrestored.append(Unrestored("token", token.id, "not_issued", detail))
            continue
        done.tokens.append(tokens.create(session, member, name=token.name))


def _bookings(session: Session, removal: MemberRemoval, done: Restored, now: datetime) -> None:
    if not removal.booking_ids:
        return
    cancelled = session.scalars(
        select(Booking).where(among(session, Booking.id, removal.booking_ids)).order_by(Booking.start_at, Booking.id)
    ).all()
    for booking in cancelled:
        reason: Reason | None = _why_not(session, booking, now)
        if reason is None:
            try:
                with session.begin_nested():
                    bookings.restore(session, booking)
            except Conflict as error:
                reason = "desk_taken" if error.code == "desk_unavailable" else "member_busy"
            except NotAllowed:  # deactivated between the check and the restore: said as such
                reason = "desk_removed"
            else:
                done.bookings.append(booking)
                continue
        done.unrestored.append(Unrestored("booking", booking.id, reason, _detail(booking, reason)))


def _why_not(session: Session, booking: Booking, now: datetime) -> Reason | None:
    """The reason a booking cannot come back that needs no attempt, or None to try."""
    if booking.status is not BookingStatus.CANCELLED:
        return "not_cancelled"
    if booking.end_at <= now:
        return "ended"
    if booking.desk_id is not None and not session.get_one(Desk, booking.desk_id).active:
        return "desk_removed"
    return None


def _detail(booking: Booking, reason: Reason) -> str:
    when = f"{booking.start_at:%Y-%m-%d %H:%M} to {booking.end_at:%H:%M} UTC"
    desk = f" on desk {booking.desk_id}" if booking.desk_id is not None else ""
    return f"booking {booking.id}{desk} {when}: {REASONS[reason]}"
