"""What a removal took away, kept so that it can be undone (store.services.restores).

`members.remove` and `members.remove_many` call `record` in the removal's own transaction, before
they change the members: a removal that commits always has its record, and a rolled-back one none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from store.models import Member, MemberRemoval, Organisation, Team, TeamMembership
from store.sql import among

MIN_UNDO_DAYS, MAX_UNDO_DAYS = 0, 365


def record(
    session: Session,
    leaving: Sequence[Member],
    *,
    reason: str,
    now: datetime,
    booking_ids: Mapping[int, Sequence[int]],
    token_ids: Mapping[int, Sequence[int]],
) -> None:
    """Keep, for each member about to be removed, their membership as it is (status, API access, teams)
    and what the removal cancels and revokes (by member id), in one insert for all."""
    if not leaving:
        return
    ids = [member.id for member in leaving]
    teams: dict[int, list[dict[str, object]]] = {member_id: [] for member_id in ids}
    for member_id, team_id, name in session.execute(
        select(TeamMembership.member_id, Team.id, Team.name)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(among(session, TeamMembership.member_id, ids))
        .order_by(TeamMembership.member_id, Team.id)
    ):
        teams[member_id].append({"id": team_id, "name": name})
    session.execute(
        insert(MemberRemoval),
        [
            {
                "organisation_id": member.organisation_id,
                "member_id": member.id,
                "removed_at": now,
                "reason": reason,
                "status_before": member.status,
                "api_access": member.api_access,
                "teams": teams[member.id],
                "token_ids": list(token_ids.get(member.id, ())),
                "booking_ids": list(booking_ids.get(member.id, ())),
            }
            for member in leaving
        ],
    )


def latest(session: Session, member_id: int) -> MemberRemoval | None:
    """The member's last removal (the one a restore undoes), restored or not."""
    return session.scalar(
        select(MemberRemoval)
        .where(MemberRemoval.member_id == member_id)
        .order_by(MemberRemoval.removed_at.desc(), MemberRemoval.id.desc())
        .limit(1)
    )


def undo_ends(removal: MemberRemoval, organisation: Organisation) -> datetime:
    """Until when the removal can be undone, by the organisation's setting as it is now."""
    return removal.removed_at + timedelta(days=organisation.offboarding_undo_days)
