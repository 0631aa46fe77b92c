"""What connectors hand the worker: directory records in one shape, whatever the source.

A connector reads one *round* of a directory: pages of users, removals and groups. A round is
either a complete listing (`full`: whoever is not in it is gone) or the changes since the cursor
the previous round ended with. The worker's sync engine applies pages as they come and keeps the
cursor only once the round is complete, so a round cut short is simply read again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A person as the directory describes them now."""

    external_id: str  # the provider's stable id: Graph object id, Google user id, SCIM id, CSV address
    username: str  # the sign-in name: userPrincipalName, primaryEmail, SCIM userName
    email: str | None  # the mailbox address; None for an account without a mailbox
    display_name: str = ""
    active: bool = True  # False: disabled, suspended or archived
    guest: bool = False  # an external (B2B) account
    org_unit: str | None = None  # Google's orgUnitPath


@dataclass(frozen=True, slots=True)
class RemovedUser:
    """A person the directory no longer lists (Graph `@removed`, Google `deletionTime`, SCIM DELETE)."""

    external_id: str


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    """A group and what changed in its membership (member ids are user `external_id`s).

    `members` replaces the whole membership when given; `added`/`removed` change it. In a full
    round the members announced are all the members: anyone not announced by the round's end is
    no longer one, so a connector may announce a large group's members in slices over several pages.
    """

    external_id: str
    name: str
    email: str | None = None  # Google groups are named by address in scopes
    members: frozenset[str] | None = None
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    """One page of a round.

    `full_users`/`full_groups`: this page belongs to a complete listing of users/groups (set on
    every page of such a listing; a round can turn full part-way, after a 410). `cursor` is set on
    the round's last page only: where the next round starts.
    """

    users: tuple[DirectoryUser, ...] = ()
    removed: tuple[RemovedUser, ...] = ()
    groups: tuple[DirectoryGroup, ...] = ()
    full_users: bool = False
    full_groups: bool = False
    cursor: str | None = None
    last: bool = False
    notes: tuple[str, ...] = field(default=())  # what happened on the way (throttled, resynced), for the admin


class DirectoryReader(Protocol):
    """A directory connector: reads a round starting at `cursor` (None: from scratch, a full listing)."""

    def read(self, cursor: str | None) -> Iterator[DirectoryPage]: ...


class ConnectorError(Exception):
    """The outside system refused or failed; `message` is for an admin, `action_required` when only they can fix it."""

    def __init__(self, message: str, *, action_required: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.action_required = action_required
        self.retry_after = retry_after
