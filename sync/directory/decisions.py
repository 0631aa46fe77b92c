"""What a directory sync decides, person by person and team by team: the plan it applies.

`engine.plan_people` and `engine.plan_teams` make these without changing anything; `engine.apply_people`
and `engine.sync_teams` do what they say. A stored plan (sync/directory/plans.py) is these, described.
"""

from __future__ import annotations

from dataclasses import dataclass


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
