"""Whether a directory user belongs in the organisation, by the connection's scope."""

from __future__ import annotations

from typing import Protocol

from store.models import DirectoryUser
from store.services.connections import Scope


class Addressed(Protocol):
    """What an address is chosen from: a staged row, or a connector's record before it is staged."""

    @property
    def username(self) -> str: ...
    @property
    def email(self) -> str | None: ...


def address(user: Addressed, scope: Scope) -> str | None:
    """The address a member would have: the mailbox, or the sign-in name when accounts without one are wanted."""
    if user.email:
        return user.email
    if scope.include_without_mailbox and "@" in user.username:
        return user.username
    return None


def in_scope(user: DirectoryUser, scope: Scope, groups: set[str]) -> bool:
    """`groups`: the ids and addresses (lower-cased) of the live groups the user is in."""
    mail = address(user, scope)
    if user.deleted or not user.active or mail is None:
        return False
    if user.guest and not scope.include_guests:
        return False
    if scope.domains and mail.rpartition("@")[2] not in scope.domains:
        return False
    if scope.groups and not scope.groups & groups:
        return False
    return not scope.org_units or any(_under(user.org_unit or "", unit) for unit in scope.org_units)


def _under(path: str, unit: str) -> bool:
    unit = unit.rstrip("/") or "/"
    return unit == "/" or path == unit or path.startswith(unit + "/")


def mirrors_as_team(scope: Scope, group_id: str, group_email: str | None) -> bool:
    """Whether a group is opted in to become a team."""
    wanted = scope.team_groups
    return "*" in wanted or group_id.lower() in wanted or (group_email or "").lower() in wanted
