"""One Google Workspace user read alone, with their groups (`PersonReader`).

`users.get` takes the user's id, primary address or an alias; a 404 (deleted, or never there) is a
person the directory does not have. Their groups, when the connection's scope or teams name some, are
`groups.list(userKey=…)` (the groups they are a direct member of) and, for each group the scope names
by address that is not among them, `members.hasMember` (which counts nested membership, as the full
round's `includeDerivedMembership` does), so a scope group reached through a nested group still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from connectors.google.directory import GROUPS_PAGE, to_user
from connectors.google.service import DirectoryService, GoogleNotFound, GoogleSettings
from connectors.records import DirectoryGroup, PersonRecord


class GooglePerson:
    """Reads one person of a Workspace customer; `groups`: read their groups too, `scope_groups`: the
    addresses the scope names (checked for nested membership)."""

    def __init__(
        self,
        settings: GoogleSettings,
        *,
        groups: bool,
        scope_groups: Sequence[str] = (),
        service: DirectoryService | None = None,
    ) -> None:
        self.groups = groups
        self.scope_groups = tuple(scope_groups)
        self.service = service or DirectoryService(settings)

    def person(self, address: str, known_id: str | None) -> PersonRecord | None:
        """The person, or None when Google has no such user."""
        item = None
        for key in filter(None, (known_id, address)):
            try:
                item = self.service.call(partial(_get_user, key=key), f"reading user {address}")
                break
            except GoogleNotFound:
                continue
        if item is None or not item.get("id"):
            return None
        user = to_user(item)
        if not self.groups:
            return PersonRecord(user)
        return PersonRecord(user, tuple(self._groups_of(user.external_id)))

    def _groups_of(self, user_id: str) -> list[DirectoryGroup]:
        found: dict[str, DirectoryGroup] = {}
        token: str | None = None
        while True:
            body = self.service.call(partial(_groups_page, user_key=user_id, token=token), "listing the user's groups")
            for group in body.get("groups", ()):
                if group.get("id"):
                    found[str(group["id"])] = _group(group)
            token = body.get("nextPageToken")
            if not token:
                break
        known = {group.email.lower() for group in found.values() if group.email}
        for email in self.scope_groups:
            if email.lower() in known:
                continue
            try:
                answer = self.service.call(
                    partial(_has_member, group_key=email, member_key=user_id), f"checking membership of {email}"
                )
                if answer.get("isMember"):
                    group = self.service.call(partial(_get_group, key=email), f"reading group {email}")
                    found[str(group["id"])] = _group(group)
            except GoogleNotFound:
                continue  # a group that is gone holds nobody
        return list(found.values())


def _group(group: dict[str, Any]) -> DirectoryGroup:
    name = str(group.get("name") or group.get("email") or group["id"])
    return DirectoryGroup(external_id=str(group["id"]), name=name, email=group.get("email"))


def _get_user(resource: Any, key: str) -> Any:
    return resource.users().get(userKey=key, projection="basic")


def _groups_page(resource: Any, user_key: str, token: str | None) -> Any:
    return resource.groups().list(userKey=user_key, maxResults=GROUPS_PAGE, pageToken=token)


def _has_member(resource: Any, group_key: str, member_key: str) -> Any:
    return resource.members().hasMember(groupKey=group_key, memberKey=member_key)


def _get_group(resource: Any, key: str) -> Any:
    return resource.groups().get(groupKey=key)
