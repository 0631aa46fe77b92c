"""What a directory sync decides, person by person and team by team: the plan it applies.

`engine.plan_people` and `engine.plan_teams` make these without changing anything; `engine.apply_people`
and `engine.sync_teams` do what they say. A stored plan (sync/directory/plans.py) is these, described.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.columns import utcnow
from store.models import LIVE_STATUSES, Booking, Member
from store.sql import among
from store.times import iso


@dataclass(frozen=True, slots=True)
class Person:
    """What a sync does for one directory user: the action a plan shows and the row's state after it.

    `action` is one of PEOPLE_ACTIONS, or empty when nothing visible happens (the row's bookkeeping
    only: a newcomer's duplicate row, someone already in step, someone leaving a scope they were never in).
    """

    user: str  # the directory's id for them
    row_id: int
    action: str = ""
    email: str = ""  # the address they have, or will have (updated: the new one)
    name: str = ""  # the name the directory gives them
    member_id: int | None = None  # None: a newcomer, not a member yet
    was: str | None = None  # updated: the address before
    reason: str = ""  # skipped, kept: why, as the sync's notes say it
    in_scope: bool | None = None  # the row's scope decision after; None: left as it is
    newcomer: bool = False  # brought in (or, a duplicate row, linked to the one brought in) by address
    admin: bool = False  # removed: an active admin (removed one by one: the last admin stays)


# What a plan shows a person under, in the order a plan lists them (arrivals, changes, departures, the rest).
PEOPLE_ACTIONS = ("invited", "added", "restored", "linked", "updated", "removed", "kept", "skipped")
LAST_ADMIN = "an organisation must keep at least one active admin"
REJECTED = "an admin rejected this removal; proposed again when the directory changes them"


@dataclass(frozen=True, slots=True)
class TeamChange:
    """What mirroring one opted-in group does to its team: made, renamed, people put in and taken out."""

    group: str  # the group's id
    name: str  # the team's name, as it is or will be
    team_id: int | None  # None: a team to make
    renamed_from: str | None = None
    # Member ids, or a newcomer's address (not a member yet: a plan's); `plan_teams` sorts them.
    added: tuple[int | str, ...] = ()
    removed: tuple[int | str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.team_id is None or self.renamed_from or self.added or self.removed)


def describe(
    session: Session, people: Sequence[Person], team_changes: Sequence[TeamChange], *, now: datetime | None = None
) -> dict[str, Any]:
    """A plan as it is stored and shown: people by action (each removal with the future bookings it
    would cancel), teams that change (people by address). Bookkeeping-only decisions are left out."""
    shown: dict[str, list[dict[str, Any]]] = {}
    for person in people:
        if not person.action:
            continue
        item: dict[str, Any] = {"user": person.user, "email": person.email, "name": person.name}
        item["member_id"] = person.member_id
        if person.was is not None:
            item["was"] = person.was
        if person.reason:
            item["reason"] = person.reason
        shown.setdefault(person.action, []).append(item)
    removed = shown.get("removed", [])
    cancels = _future_bookings(session, [item["member_id"] for item in removed], now or utcnow())
    for item in removed:
        item["bookings"] = cancels.get(item["member_id"], [])
    ids = {key for change in team_changes for key in (*change.added, *change.removed) if isinstance(key, int)}
    emails: dict[int, str] = {}
    if ids:
        emails = {
            row.id: row.email for row in session.execute(select(Member.id, Member.email).where(Member.id.in_(ids)))
        }
    teams = [
        {
            "group": change.group,
            "team": change.name,
            "team_id": change.team_id,
            "renamed_from": change.renamed_from,
            "added": [emails.get(key, str(key)) if isinstance(key, int) else key for key in change.added],
            "removed": [emails.get(key, str(key)) if isinstance(key, int) else key for key in change.removed],
        }
        for change in team_changes
        if change.changed
    ]
    return {"people": {action: shown[action] for action in PEOPLE_ACTIONS if action in shown}, "teams": teams}


def counts_of(changes: dict[str, Any]) -> dict[str, int]:
    """How many people each action of a described plan touches, its teams that change, the bookings it cancels."""
    people: dict[str, list[dict[str, Any]]] = changes.get("people", {})
    counts = {action: len(people.get(action, [])) for action in PEOPLE_ACTIONS}
    counts["teams_changed"] = sum(1 for team in changes.get("teams", []) if team["added"] or team["removed"])
    counts["bookings_cancelled"] = sum(len(item.get("bookings", [])) for item in people.get("removed", []))
    return counts


def fingerprint(changes: dict[str, Any]) -> str:
    """What a described plan would change, hashed: two plans with one fingerprint do the same to people and
    teams (the bookings a removal cancels are left out: booking a desk does not make a plan stale)."""
    people = {
        action: [{key: value for key, value in item.items() if key != "bookings"} for item in items]
        for action, items in changes.get("people", {}).items()
    }
    text = json.dumps({"people": people, "teams": changes.get("teams", [])}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _future_bookings(session: Session, member_ids: list[int], now: datetime) -> dict[int, list[dict[str, Any]]]:
    """The live bookings of these members that have not ended: what removing them cancels."""
    found: dict[int, list[dict[str, Any]]] = {}
    if not member_ids:
        return found
    for booking in session.scalars(
        select(Booking)
        .where(among(session, Booking.member_id, member_ids), Booking.status.in_(LIVE_STATUSES), Booking.end_at > now)
        .order_by(Booking.member_id, Booking.start_at)
    ):
        found.setdefault(booking.member_id, []).append(
            {
                "booking_id": booking.id,
                "desk_id": booking.desk_id,
                "start": iso(booking.start_at),
                "end": iso(booking.end_at),
            }
        )
    return found
