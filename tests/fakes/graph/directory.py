"""The fake tenant's users and groups, their change log, and Graph delta paging over them.

Every change appends to a log; a deltaLink is a position in that log, so the next round returns
the objects changed since then (latest state wins, several changes to one object come once). A
listing (full or incremental) is fixed when it starts: the ids (or group slices) to return are
computed once, and nextLinks are offsets into that list, so paging 100,000 users costs O(n).
Bumping the epoch (`expire_tokens`) turns every earlier delta and skip token into a 410.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

# Graph property name -> attribute of User.
USER_PROPERTIES = {
    "displayName": "display_name",
    "mail": "mail",
    "userPrincipalName": "upn",
    "accountEnabled": "enabled",
    "userType": "user_type",
    "givenName": "given_name",
    "surname": "surname",
}
MEMBER_TYPES = {"user": "#microsoft.graph.user", "group": "#microsoft.graph.group", "device": "#microsoft.graph.device"}


class SyncStateGone(Exception):
    """A delta or skip token from before the last `expire_tokens`: Graph answers 410."""


@dataclass
class User:
    id: str
    display_name: str
    upn: str
    mail: str | None
    enabled: bool = True
    user_type: str = "Member"
    given_name: str | None = None
    surname: str | None = None
    soft_deleted: bool = False

    def to_graph(self, select: tuple[str, ...] | None, fields: frozenset[str] | None = None) -> dict[str, Any]:
        """The user as Graph shows it: `select`ed properties, only `fields` of them when partial."""
        names = select or tuple(USER_PROPERTIES)
        if fields is not None:
            names = tuple(name for name in names if name in fields)
        body: dict[str, Any] = {name: getattr(self, USER_PROPERTIES[name]) for name in names if name in USER_PROPERTIES}
        body["id"] = self.id
        return body


@dataclass
class Group:
    id: str
    name: str
    mail: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # member id -> "user" | "group" | "device"


@dataclass(frozen=True)
class Change:
    """One log entry: an object changed (`fields` None: everything), or a membership change."""

    kind: str  # "user" | "group"
    id: str
    fields: frozenset[str] | None = None
    member: str | None = None
    member_added: bool = True


@dataclass
class Listing:
    """A listing in progress: what to return, page by page, and the log position it ends at."""

    stream: str
    items: list[Any]
    end: int
    epoch: int
    select: tuple[str, ...] | None
    partial: dict[str, frozenset[str] | None]  # user id -> changed fields (incremental users only)


class Directory:
    """The tenant's state. All methods are thread-safe (the server answers on several threads)."""

    def __init__(self, *, page_size: int = 100, members_per_slice: int = 100) -> None:
        self.page_size = page_size
        self.members_per_slice = members_per_slice
        self.partial_updates = False  # incremental user objects carry only the changed properties
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.log: list[Change] = []
        self.epoch = 0
        self._listings: OrderedDict[str, Listing] = OrderedDict()
        self._delta_tokens: dict[str, tuple[int, int, tuple[str, ...] | None]] = {}
        self._ids = itertools.count(1)
        self._removed_kinds: dict[tuple[str, str], str] = {}
        self.lock = threading.RLock()

    def user_by_key(self, key: str) -> User | None:
        """A user by id or userPrincipalName (any case), as `GET /users/{id | userPrincipalName}` finds one."""
        with self.lock:
            if key in self.users:
                return self.users[key]
            return next((user for user in self.users.values() if user.upn.lower() == key.lower()), None)

    # --- the state API for tests ---------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        upn: str,
        *,
        display_name: str = "",
        mail: str | None = None,
        enabled: bool = True,
        guest: bool = False,
    ) -> User:
        """Create a user (or restore a soft-deleted one with new properties)."""
        with self.lock:
            user = User(
                id=user_id,
                display_name=display_name,
                upn=upn,
                mail=mail,
                enabled=enabled,
                user_type="Guest" if guest else "Member",
            )
            self.users[user_id] = user
            self.log.append(Change("user", user_id))
            return user

    def add_users(self, users: list[tuple[str, str, str | None]]) -> None:
        """Create many users at once: (id, userPrincipalName, mail); display names follow the UPN."""
        with self.lock:
            for user_id, upn, mail in users:
                self.users[user_id] = User(id=user_id, display_name=upn.split("@")[0], upn=upn, mail=mail)
                self.log.append(Change("user", user_id))

    def update_user(self, user_id: str, **properties: Any) -> None:
        """Change some of a user's Graph properties (displayName=…, mail=…, accountEnabled=…)."""
        with self.lock:
            user = self.users[user_id]
            for name, value in properties.items():
                if name not in USER_PROPERTIES:
                    raise KeyError(name)
                setattr(user, USER_PROPERTIES[name], value)
            self.log.append(Change("user", user_id, fields=frozenset(properties)))

    def disable_user(self, user_id: str) -> None:
        """accountEnabled: false."""
        self.update_user(user_id, accountEnabled=False)

    def soft_delete_user(self, user_id: str) -> None:
        """Delete to the recycle bin: delta reports `@removed: {"reason": "changed"}`."""
        with self.lock:
            self.users[user_id].soft_deleted = True
            self._drop_memberships(user_id)
            self.log.append(Change("user", user_id))

    def restore_user(self, user_id: str) -> None:
        """Bring a soft-deleted user back."""
        with self.lock:
            self.users[user_id].soft_deleted = False
            self.log.append(Change("user", user_id))

    def hard_delete_user(self, user_id: str) -> None:
        """Delete for good: delta reports `@removed: {"reason": "deleted"}`."""
        with self.lock:
            self.users.pop(user_id)
            self._drop_memberships(user_id)
            self.log.append(Change("user", user_id))

    def add_group(self, group_id: str, name: str, *, mail: str | None = None) -> Group:
        """Create a group."""
        with self.lock:
            group = Group(id=group_id, name=name, mail=mail)
            self.groups[group_id] = group
            self.log.append(Change("group", group_id))
            return group

    def rename_group(self, group_id: str, name: str) -> None:
        """Change a group's displayName."""
        with self.lock:
            self.groups[group_id].name = name
            self.log.append(Change("group", group_id, fields=frozenset({"displayName"})))

    def delete_group(self, group_id: str) -> None:
        """Delete a group: delta reports it `@removed`."""
        with self.lock:
            self.groups.pop(group_id)
            self.log.append(Change("group", group_id))

    def add_member(self, group_id: str, member_id: str, kind: str = "user") -> None:
        """Add a user (or a nested group or device, which the connector must ignore) to a group."""
        with self.lock:
            self.groups[group_id].members[member_id] = kind
            self.log.append(Change("group", group_id, fields=frozenset(), member=member_id, member_added=True))

    def add_members(self, group_id: str, member_ids: list[str]) -> None:
        """Add many users to a group at once."""
        with self.lock:
            for member_id in member_ids:
                self.add_member(group_id, member_id)

    def remove_member(self, group_id: str, member_id: str) -> None:
        """Take a member out of a group."""
        with self.lock:
            kind = self.groups[group_id].members.pop(member_id)
            self._log_removed_member(group_id, member_id, kind)

    def expire_tokens(self) -> None:
        """Forget every sync state: earlier delta links and next links now answer 410."""
        with self.lock:
            self.epoch += 1
            self._listings.clear()
            self._delta_tokens.clear()

    def _drop_memberships(self, user_id: str) -> None:
        for group in self.groups.values():
            if user_id in group.members:
                kind = group.members.pop(user_id)
                self._log_removed_member(group.id, user_id, kind)

    def _log_removed_member(self, group_id: str, member_id: str, kind: str) -> None:
        self.log.append(Change("group", group_id, fields=frozenset(), member=member_id, member_added=False))
        self._removed_kinds[(group_id, member_id)] = kind  # a removed member's delta entry still has its type

    # --- delta ---------------------------------------------------------------------------------

    def start(self, stream: str, select: tuple[str, ...] | None, delta_token: str | None) -> str:
        """Begin a listing (full without a delta token); returns its skip token for the first page."""
        with self.lock:
            if delta_token is None:
                start, token_select = None, select
            else:
                known = self._delta_tokens.get(delta_token)
                if known is None or known[0] != self.epoch:
                    raise SyncStateGone
                start, token_select = known[1], known[2]
            end = len(self.log)
            partial: dict[str, frozenset[str] | None] = {}
            if stream == "users":
                items: list[Any] = self._user_items(start, end, partial)
            else:
                items = self._group_items(start, end)
            listing_id = str(next(self._ids))
            self._listings[listing_id] = Listing(stream, items, end, self.epoch, token_select, partial)
            while len(self._listings) > 256:  # bounded: old listings are abandoned ones
                self._listings.popitem(last=False)
            return f"{self.epoch}.{listing_id}.0"

    def page(self, skip_token: str) -> tuple[list[dict[str, Any]], str | None, str | None]:
        """One page: (objects, next skip token or None, delta token on the last page)."""
        with self.lock:
            try:
                epoch_text, listing_id, offset_text = skip_token.split(".")
                epoch, offset = int(epoch_text), int(offset_text)
            except ValueError:
                raise SyncStateGone from None
            listing = self._listings.get(listing_id)
            if listing is None or epoch != self.epoch:
                raise SyncStateGone
            chunk = listing.items[offset : offset + self.page_size]
            if listing.stream == "users":
                objects = [self._render_user(user_id, listing) for user_id in chunk]
            else:
                objects = [self._render_group(unit) for unit in chunk]
            if offset + self.page_size < len(listing.items):
                return objects, f"{epoch}.{listing_id}.{offset + self.page_size}", None
            delta_token = f"{self.epoch}-{next(self._ids)}"
            self._delta_tokens[delta_token] = (self.epoch, listing.end, listing.select)
            return objects, None, delta_token

    def select_of(self, skip_token: str) -> tuple[str, ...] | None:
        """The $select a listing was started with (nextLinks do not repeat it, as in Graph)."""
        with self.lock:
            parts = skip_token.split(".")
            listing = self._listings.get(parts[1]) if len(parts) == 3 else None
            return listing.select if listing else None

    def _user_items(self, start: int | None, end: int, partial: dict[str, frozenset[str] | None]) -> list[str]:
        if start is None:
            return [user.id for user in self.users.values() if not user.soft_deleted]
        changed: dict[str, frozenset[str] | None] = {}
        for change in itertools.islice(self.log, start, end):
            if change.kind != "user":
                continue
            before = changed.get(change.id, frozenset())
            changed[change.id] = None if before is None or change.fields is None else before | change.fields
        partial.update(changed)
        return list(changed)

    def _group_items(self, start: int | None, end: int) -> list[tuple[str, list[tuple[str, bool]], bool]]:
        """Units of (group id, member slice [(member id, added)], object changed)."""
        units: list[tuple[str, list[tuple[str, bool]], bool]] = []
        if start is None:
            for group in self.groups.values():
                units.extend(self._slices(group.id, [(member, True) for member in group.members], True))
            return units
        changed: dict[str, tuple[dict[str, bool], bool]] = {}
        for change in itertools.islice(self.log, start, end):
            if change.kind != "group":
                continue
            ops, touched = changed.get(change.id, ({}, False))
            if change.member is not None:
                ops.pop(change.member, None)  # keep the latest operation, in order
                ops[change.member] = change.member_added
            else:
                touched = True
            changed[change.id] = (ops, touched)
        for group_id, (ops, touched) in changed.items():
            units.extend(self._slices(group_id, list(ops.items()), touched))
        return units

    def _slices(
        self, group_id: str, members: list[tuple[str, bool]], touched: bool
    ) -> list[tuple[str, list[tuple[str, bool]], bool]]:
        if not members:
            return [(group_id, [], touched)]
        size = self.members_per_slice
        return [(group_id, members[i : i + size], touched) for i in range(0, len(members), size)]

    def _render_user(self, user_id: str, listing: Listing) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            return {"id": user_id, "@removed": {"reason": "deleted"}}
        if user.soft_deleted:
            return {"id": user_id, "@removed": {"reason": "changed"}}
        fields = listing.partial.get(user_id) if self.partial_updates else None
        return user.to_graph(listing.select, fields)

    def _render_group(self, unit: tuple[str, list[tuple[str, bool]], bool]) -> dict[str, Any]:
        group_id, members, touched = unit
        group = self.groups.get(group_id)
        if group is None:
            return {"id": group_id, "@removed": {"reason": "deleted"}}
        body: dict[str, Any] = {"id": group_id}
        if touched or not self.partial_updates:
            body["displayName"] = group.name
            body["mail"] = group.mail
        if members:
            entries = []
            for member_id, added in members:
                kind = group.members.get(member_id) or self._removed_kinds.get((group_id, member_id), "user")
                entry: dict[str, Any] = {"@odata.type": MEMBER_TYPES[kind], "id": member_id}
                if not added:
                    entry["@removed"] = {"reason": "deleted"}
                entries.append(entry)
            body["members@delta"] = entries
        return body
