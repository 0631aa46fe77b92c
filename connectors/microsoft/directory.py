"""Entra ID users and groups through Graph delta queries, as rounds of DirectoryPages.

A round reads two streams one after the other: `/users/delta`, then `/groups/delta`. Each Graph
page becomes one DirectoryPage. The cursor is a small JSON object holding both deltaLinks; it goes
on the round's last page (the groups stream's deltaLink page), so a round cut short is read again.

Translation choices:

- A user with `@removed` (reason `changed`: soft-deleted, restorable for 30 days; `deleted`: gone
  for good) is a RemovedUser either way: a restored user comes back later as an ordinary change.
- Delta may describe a changed user by the changed properties only. A user object missing any
  property we select is read again in full (`GET /users/{id}`) rather than guessed at: a missing
  `mail` must not be read as "no mailbox". A 404 there means the user went in the meantime.
  `accountEnabled` null counts as enabled (Graph leaves it null for some synced accounts).
- Groups: a group object without `displayName` or `mail` (membership-only changes in a later
  slice) takes them from an earlier object of the same group in this round, else from
  `GET /groups/{id}`. Members come as `members@delta`; entries that are not users (nested groups,
  devices, service principals) are ignored; `@removed` ones go to `removed`, the others to
  `added`. `members` is never set: a large group comes in slices over several pages, and in a full
  round the members announced across the round are the whole membership (see records.py).
- A 410 Gone, or a `syncStateNotFound`/`resyncRequired` error, on a delta or next link starts that
  stream again from scratch (pages flagged full from then on) and says so in the notes. It may
  happen part-way through a round; the restart is bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from connectors.microsoft.graph import GraphClient, GraphError
from connectors.records import ConnectorError, DirectoryGroup, DirectoryPage, DirectoryUser, RemovedUser

USER_FIELDS = ("id", "displayName", "mail", "userPrincipalName", "accountEnabled", "userType")
GROUP_FIELDS = ("displayName", "mail", "members")
USERS_DELTA = "users/delta?$select=" + ",".join(USER_FIELDS)
GROUPS_DELTA = "groups/delta?$select=" + ",".join(GROUP_FIELDS)
USERS_PERMISSION = "User.Read.All"
GROUPS_PERMISSION = "Group.Read.All"
GRAPH_USER = "#microsoft.graph.user"
_CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next round starts: each stream's deltaLink (None: list that stream from scratch)."""

    users: str | None = None
    groups: str | None = None

    def encode(self) -> str:
        """The opaque string handed to the worker."""
        return json.dumps({"v": _CURSOR_VERSION, "users": self.users, "groups": self.groups}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        """Read a cursor made by `encode`; None is an empty cursor (a full round)."""
        if text is None:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError("not a Microsoft directory cursor") from None
        if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
            raise ValueError("not a Microsoft directory cursor")
        users, groups = data.get("users"), data.get("groups")
        if not (users is None or isinstance(users, str)) or not (groups is None or isinstance(groups, str)):
            raise ValueError("not a Microsoft directory cursor")
        return cls(users=users, groups=groups)


@dataclass(slots=True)
class _GraphPage:
    items: list[dict[str, Any]]
    full: bool
    delta_link: str | None
    notes: list[str] = field(default_factory=list)


class MicrosoftDirectory:
    """A DirectoryReader over Microsoft Graph (users, and groups unless `groups=False`)."""

    def __init__(self, graph: GraphClient, *, groups: bool = True, max_resyncs: int = 2) -> None:
        self._graph = graph
        self._groups = groups
        self._max_resyncs = max_resyncs

    def read(self, cursor: str | None) -> Iterator[DirectoryPage]:
        """Read one round: all users and groups (no cursor), or the changes since `cursor`."""
        notes: list[str] = []
        try:
            start = Cursor.decode(cursor)
        except ValueError:
            # A cursor from another connector or an older format: a full round is always correct.
            start = Cursor()
            notes.append("the stored cursor was not readable; listing everything again")
        users_link: str | None = None
        for page in self._pages("users", start.users, USERS_DELTA, USERS_PERMISSION):
            users, removed = self._translate_users(page.items)
            users_link = page.delta_link
            last = users_link is not None and not self._groups
            yield DirectoryPage(
                users=users,
                removed=removed,
                full_users=page.full,
                cursor=Cursor(users=users_link).encode() if last else None,
                last=last,
                notes=(*notes, *page.notes, *self._graph.notes.drain()),
            )
            notes = []
        if not self._groups:
            return
        known: dict[str, tuple[str, str | None]] = {}  # group id -> (name, mail) seen this round
        for page in self._pages("groups", start.groups, GROUPS_DELTA, GROUPS_PERMISSION):
            groups = tuple(self._translate_group(item, known) for item in page.items if _has_id(item))
            last = page.delta_link is not None
            yield DirectoryPage(
                groups=groups,
                full_groups=page.full,
                cursor=Cursor(users=users_link, groups=page.delta_link).encode() if last else None,
                last=last,
                notes=(*page.notes, *self._graph.notes.drain()),
            )

    def _pages(self, stream: str, link: str | None, initial: str, permission: str) -> Iterator[_GraphPage]:
        """Follow nextLinks to the deltaLink, starting again from scratch when Graph asks for a resync."""
        full = link is None
        url = link or initial
        resyncs = 0
        notes: list[str] = []
        while True:
            try:
                body = self._graph.get_json(url, permission=permission)
            except GraphError as error:
                if not error.resync or resyncs >= self._max_resyncs:
                    raise
                resyncs += 1
                notes.append(
                    f"Graph no longer knows the {stream} sync state ({error.status} {error.code or 'Gone'}); "
                    f"listing all {stream} again"
                )
                url, full = initial, True
                continue
            items = body.get("value")
            next_link = body.get("@odata.nextLink")
            delta_link = body.get("@odata.deltaLink")
            if not isinstance(items, list) or not isinstance(next_link or delta_link, str):
                raise ConnectorError(f"Graph {stream} delta page without value or next/delta link")
            yield _GraphPage([item for item in items if isinstance(item, dict)], full, delta_link, notes)
            notes = []
            if isinstance(delta_link, str):
                return
            url = str(next_link)

    def _translate_users(
        self, items: list[dict[str, Any]]
    ) -> tuple[tuple[DirectoryUser, ...], tuple[RemovedUser, ...]]:
        users: list[DirectoryUser] = []
        removed: list[RemovedUser] = []
        for item in items:
            if not _has_id(item):
                continue
            if "@removed" in item:
                removed.append(RemovedUser(external_id=item["id"]))
                continue
            if any(key not in item for key in USER_FIELDS):
                fetched = self._fetch(f"users/{quote(item['id'])}?$select={','.join(USER_FIELDS)}", USERS_PERMISSION)
                if fetched is None:
                    removed.append(RemovedUser(external_id=item["id"]))
                    continue
                item = fetched
            users.append(user_from_graph(item))
        return tuple(users), tuple(removed)

    def _translate_group(self, item: dict[str, Any], known: dict[str, tuple[str, str | None]]) -> DirectoryGroup:
        group_id: str = item["id"]
        if "@removed" in item:
            return DirectoryGroup(external_id=group_id, name=str(item.get("displayName") or ""), deleted=True)
        if group_id not in known and ("displayName" not in item or "mail" not in item):
            fetched = self._fetch(f"groups/{quote(group_id)}?$select=displayName,mail", GROUPS_PERMISSION)
            if fetched is None:  # gone since this page was made
                return DirectoryGroup(external_id=group_id, name=str(item.get("displayName") or ""), deleted=True)
            known[group_id] = (str(fetched.get("displayName") or ""), fetched.get("mail") or None)
        # What the delta object says wins over what was read before: it is the newer state.
        name = str(item["displayName"] or "") if "displayName" in item else known[group_id][0]
        mail = (item["mail"] or None) if "mail" in item else known[group_id][1]
        known[group_id] = (name, mail)
        added, removed = members_from_delta(item.get("members@delta"))
        return DirectoryGroup(external_id=group_id, name=name, email=mail, added=added, removed=removed)

    def _fetch(self, path: str, permission: str) -> dict[str, Any] | None:
        try:
            return self._graph.get_json(path, permission=permission)
        except GraphError as error:
            if error.status == 404:
                return None
            raise


def user_from_graph(item: dict[str, Any]) -> DirectoryUser:
    """A DirectoryUser from a complete Graph user object (the properties in USER_FIELDS)."""
    username = item.get("userPrincipalName")
    if not isinstance(username, str) or not username:
        raise ConnectorError(f"Graph user {item.get('id')} has no userPrincipalName")
    return DirectoryUser(
        external_id=str(item["id"]),
        username=username,
        email=item.get("mail") or None,
        display_name=str(item.get("displayName") or ""),
        active=item.get("accountEnabled") is not False,
        guest=str(item.get("userType") or "").lower() == "guest",
    )


def members_from_delta(entries: object) -> tuple[frozenset[str], frozenset[str]]:
    """(added, removed) user ids from a `members@delta` list; non-user members are ignored."""
    added: set[str] = set()
    removed: set[str] = set()
    if not isinstance(entries, list):
        return frozenset(), frozenset()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        # Graph always types member entries; an untyped one is taken for a user, the common case.
        if str(entry.get("@odata.type", GRAPH_USER)).lower() != GRAPH_USER.lower():
            continue
        if "@removed" in entry:
            removed.add(entry["id"])
            added.discard(entry["id"])
        else:
            added.add(entry["id"])
            removed.discard(entry["id"])
    return frozenset(added), frozenset(removed)


def _has_id(item: dict[str, Any]) -> bool:
    return isinstance(item.get("id"), str) and bool(item["id"])
