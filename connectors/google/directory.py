"""Google Workspace users and groups as directory rounds (`DirectoryReader`).

The Directory API has no delta query, so every round is a complete listing: users (`users.list`),
then the users Google still remembers as deleted (`showDeleted=true`, the last 20 days' deletions,
each with a `deletionTime`), then groups with their members. Every page is marked `full_users` and
`full_groups`, so the worker treats anyone not listed by the round's end as gone; the explicit
removals only make deletions visible sooner and by name. The cursor is the time the round started:
Google needs none, but the worker can see when the last complete round began.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from connectors.google.service import DirectoryService, GoogleNotFound, GoogleSettings
from connectors.records import DirectoryGroup, DirectoryPage, DirectoryUser, RemovedUser

USERS_PAGE = 500  # users.list allows up to 500
GROUPS_PAGE = 200  # groups.list and members.list allow up to 200
MEMBERS_PER_PAGE = 20_000  # flush a page of groups once it announces this many memberships


class GoogleDirectory:
    """Reads a Workspace customer's users and groups (one instance per thread: httplib2 is not thread-safe).

    `groups`: read only these groups (their email addresses), so that a large tenant does not list
    every group's members; None reads every group. `nested`: count members of nested groups as
    members (`includeDerivedMembership`), see `_members`. `projection` "basic" reads the standard
    fields, which is all we map; "full" adds custom schemas.
    """

    def __init__(
        self,
        settings: GoogleSettings,
        *,
        groups: Sequence[str] | None = None,
        nested: bool = True,
        projection: str = "basic",
        page_size: int = USERS_PAGE,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        service: DirectoryService | None = None,
    ) -> None:
        """Prepare a reader; builds the service (no network) unless one is given."""
        self.settings = settings
        self.groups = tuple(groups) if groups is not None else None
        self.nested = nested
        self.projection = projection
        self.page_size = min(page_size, USERS_PAGE)
        self.now = now
        self.service = service or DirectoryService(settings)
        self._notes: list[str] = []

    def read(self, cursor: str | None) -> Iterator[DirectoryPage]:
        """One complete round, whatever the cursor (Google has no delta); the last page carries the new cursor."""
        started = self.now().isoformat()
        pending: DirectoryPage | None = None
        for page in self._pages():
            if pending is not None:
                yield pending
            pending = page
        # A round always has at least the first users page, so `pending` is set here.
        assert pending is not None
        yield replace(pending, cursor=started, last=True, notes=pending.notes + self._take_notes())

    def _pages(self) -> Iterator[DirectoryPage]:
        for body in self._list_users(deleted=False):
            users = tuple(to_user(item) for item in body.get("users", ()) if item.get("id"))
            yield self._page(users=users)
        for body in self._list_users(deleted=True):
            removed = tuple(RemovedUser(str(item["id"])) for item in body.get("users", ()) if item.get("id"))
            if removed:
                yield self._page(removed=removed)
        batch: list[DirectoryGroup] = []
        announced = 0
        for group in self._groups():
            member_ids = frozenset(self._members(str(group["id"])))
            batch.append(
                DirectoryGroup(
                    external_id=str(group["id"]),
                    name=str(group.get("name") or group.get("email") or group["id"]),
                    email=group.get("email"),
                    members=member_ids,
                )
            )
            announced += len(member_ids)
            if len(batch) >= GROUPS_PAGE or announced >= MEMBERS_PER_PAGE:
                yield self._page(groups=tuple(batch))
                batch, announced = [], 0
        if batch:
            yield self._page(groups=tuple(batch))

    def _page(
        self,
        *,
        users: tuple[DirectoryUser, ...] = (),
        removed: tuple[RemovedUser, ...] = (),
        groups: tuple[DirectoryGroup, ...] = (),
    ) -> DirectoryPage:
        return DirectoryPage(
            users=users,
            removed=removed,
            groups=groups,
            full_users=True,
            full_groups=True,
            notes=self._take_notes(),
        )

    def _take_notes(self) -> tuple[str, ...]:
        notes, self._notes = (*self._notes, *self.service.take_notes()), []
        return notes

    def _list_users(self, *, deleted: bool) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "customer": self.settings.customer,
            "maxResults": self.page_size,
            "projection": self.projection,
        }
        if deleted:
            params["showDeleted"] = "true"
        what = "listing deleted users" if deleted else "listing users"

        def page(resource: Any, token: str | None) -> Any:
            return resource.users().list(pageToken=token, **params)

        yield from self._paged(page, what)

    def _groups(self) -> Iterator[dict[str, Any]]:
        if self.groups is None:
            customer = self.settings.customer

            def page(resource: Any, token: str | None) -> Any:
                return resource.groups().list(customer=customer, maxResults=GROUPS_PAGE, pageToken=token)

            for body in self._paged(page, "listing groups"):
                yield from body.get("groups", ())
            return
        for email in self.groups:
            try:
                # A group that is gone is simply not announced: the full round then ends its memberships.
                yield self.service.call(partial(_get_group, key=email), f"reading group {email}")
            except GoogleNotFound:
                self._notes.append(f"group {email} not found at Google")
                continue

    def _members(self, group_id: str) -> Iterator[str]:
        # includeDerivedMembership: a desk scope named by a group address should cover everyone that address
        # reaches, members of nested groups included (as Graph's transitive members do). Without it a
        # nested group's people would silently be left out. Only USER entries are people with accounts:
        # GROUP entries are the nested groups themselves, CUSTOMER means "everyone in the account" and
        # EXTERNAL addresses have no user id of ours.
        params: dict[str, Any] = {"groupKey": group_id, "maxResults": GROUPS_PAGE}
        if self.nested:
            params["includeDerivedMembership"] = True
        pages = self._paged(
            lambda r, token: r.members().list(pageToken=token, **params), f"listing members of {group_id}"
        )
        for body in pages:
            for member in body.get("members", ()):
                if member.get("type") == "USER" and member.get("id"):
                    yield str(member["id"])

    def _paged(self, make: Callable[..., Any], what: str) -> Iterable[dict[str, Any]]:
        token: str | None = None
        while True:
            body = self.service.call(partial(make, token=token), what)
            yield body
            token = body.get("nextPageToken")
            if not token:
                return


def _get_group(resource: Any, key: str) -> Any:
    return resource.groups().get(groupKey=key)


def to_user(item: dict[str, Any]) -> DirectoryUser:
    """A Directory API user resource as a DirectoryUser (suspended or archived users are inactive)."""
    name = item.get("name") or {}
    email = item.get("primaryEmail")
    full_name = name.get("fullName") or " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
    return DirectoryUser(
        external_id=str(item["id"]),
        username=str(email or item["id"]),
        email=str(email) if email else None,
        display_name=str(full_name or ""),
        active=not (item.get("suspended") or item.get("archived")),
        org_unit=item.get("orgUnitPath"),
    )
