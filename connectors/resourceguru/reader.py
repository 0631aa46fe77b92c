"""Resource Guru as a peer platform (`PeopleReader`): its people, and their bookings and time off.

The API has no change feed, so every round is a complete listing (`full` on every page) and the
cursor is only the time the round started. Webhooks bring changes sooner; this poll reconciles what
they missed (paused or failed webhooks). Paging is the document's `limit`/`offset`.

Bookings and downtimes are listed by date (`start_date`/`end_date`, `from`/`to`), which the document
defines as "starting on or after" and "ending on or before": read literally, a project booked for the
whole quarter would never fall inside a two-week window. So the query is widened by `slack` on both
sides and whatever does not overlap the window is dropped here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from connectors.records import ConnectorError, DirectoryPage, DirectoryUser, PeoplePage, PersonEvent, Window
from connectors.resourceguru.client import ResourceGuruClient
from connectors.resourceguru.translate import (
    Person,
    Roster,
    booking_events,
    downtime_events,
    human_type_ids,
    person_of,
    to_user,
)

T = TypeVar("T")

# Bookings and time off of archived or deleted resources belong to nobody we map: leave them out.
_ONLY_CURRENT = (("include_archived_resources", "0"), ("include_deleted_resources", "0"))


class ResourceGuru:
    """Reads one Resource Guru account through `client`; see the module docstring."""

    def __init__(
        self,
        client: ResourceGuruClient,
        *,
        page_size: int = 100,
        slack: timedelta = timedelta(days=31),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.slack = slack
        self.now = now

    def people(self, cursor: str | None) -> Iterator[DirectoryPage]:
        """Human resources with an address, active then archived (inactive); one complete round."""
        started = self.now().isoformat()
        human = self._human_types()
        pages = (
            DirectoryPage(users=tuple(user for user, _ in self._people_of(items, human)), full_users=True)
            for path in ("resources", "resources/archived")
            for items in self.client.pages(path, page_size=self.page_size)
        )
        yield from _last(pages, lambda page: replace(page, cursor=started, last=True, notes=self.client.notes.drain()))

    def roster(self) -> Roster:
        """Who is who now (active human resources with an address), for reading webhooks."""
        human = self._human_types()
        people: dict[str, Person] = {}
        for items in self.client.pages("resources", page_size=self.page_size):
            people.update((user.external_id, person) for user, person in self._people_of(items, human))
        return Roster(people=people, human_types=human)

    def events(self, cursor: str | None, window: Window) -> Iterator[PeoplePage]:
        """Everyone's bookings (busy) and time off (out of office) overlapping `window`; one complete round."""
        started = self.now().isoformat()
        roster = self.roster()
        first = (window.start - self.slack).date().isoformat()
        last = (window.end + self.slack).date().isoformat()
        sources = (
            ("bookings", (("start_date", first), ("end_date", last)), booking_events),
            ("downtimes", (("from", first), ("to", last)), downtime_events),
        )
        pages = (
            PeoplePage(events=self._translate(path, items, translate, roster, window), full=True)
            for path, dates, translate in sources
            for items in self.client.pages(path, (*dates, *_ONLY_CURRENT), page_size=self.page_size)
        )
        yield from _last(pages, lambda page: replace(page, cursor=started, last=True, notes=self.client.notes.drain()))

    def _human_types(self) -> frozenset[int]:
        types = self.client.get("resource_types")
        if not isinstance(types, list) or not all(isinstance(item, dict) for item in types):
            raise ConnectorError("Resource Guru answered GET /resource_types with something other than a list")
        try:
            return human_type_ids(types)
        except ValueError as error:
            raise ConnectorError(f"Resource Guru sent a resource type that cannot be read: {error}") from None

    def _people_of(self, items: list[dict[str, Any]], human: frozenset[int]) -> list[tuple[DirectoryUser, Person]]:
        out: list[tuple[DirectoryUser, Person]] = []
        try:
            for item in items:
                user = to_user(item, human)
                if user is not None:
                    out.append((user, person_of(item, user)))
        except ValueError as error:
            raise ConnectorError(f"Resource Guru sent a resource that cannot be read: {error}") from None
        return out

    @staticmethod
    def _translate(
        path: str,
        items: list[dict[str, Any]],
        translate: Callable[[dict[str, Any], Roster], list[PersonEvent]],
        roster: Roster,
        window: Window,
    ) -> tuple[PersonEvent, ...]:
        # A whole page or nothing: one unreadable object fails the round before any of its page is applied.
        try:
            found = [event for item in items for event in translate(item, roster)]
        except ValueError as error:
            raise ConnectorError(f"Resource Guru sent {path} that cannot be read: {error}") from None
        return tuple(item for item in found if item.event.start < window.end and item.event.end > window.start)


def _last(pages: Iterator[T], finish: Callable[[T], T]) -> Iterator[T]:
    """The pages, the last one passed through `finish` (it carries the cursor and the notes)."""
    pending: T | None = None
    for page in pages:
        if pending is not None:
            yield pending
        pending = page
    # Every listing yields at least one (possibly empty) page, so there is always a last one.
    assert pending is not None
    yield finish(pending)
