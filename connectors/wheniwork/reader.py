"""When I Work as a peer platform (`PeopleReader`): its users as a directory round, everyone's shifts
and time off in a window.

When I Work has no webhooks, no delta and no paging (the document lists whole collections), so
every round is complete: `people` lists users and locations; `events` lists users, locations, the
shifts (`start_time`/`end_time`) and the time-off requests (`start`/`end`) of the window. Every
page is `full`: whatever a round does not list is gone (a deleted or unassigned shift, a cancelled
request). Everything is read and translated before the first page is yielded, so a malformed
object or a failed request ends the round with nothing applied. The cursor (on the last page)
only records what was listed: the next round needs nothing from it.

The window is asked for in whole dates widened for any account zone (see dates.py) and the answer
is kept to the events overlapping the exact window, so a full page means the same window the
worker asked for.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from connectors.records import DirectoryGroup, DirectoryPage, PeoplePage, PersonEvent, Window
from connectors.wheniwork import translate
from connectors.wheniwork.client import WhenIWorkClient
from connectors.wheniwork.dates import query_window

APPROVED = frozenset({2})  # not in the document; the When I Work schema's 2 = Accepted (0 pending, 1 canceled)
PAGE_SIZE = 500
_T = TypeVar("_T")


class WhenIWork:
    """A PeopleReader over one When I Work account, seen by the user the client logs in as.

    `approved_statuses`: the request statuses that mean approved time off (the document gives
    no codes). `office_locations`: the locations whose shifts are office days, by id or by name
    (any case); None: every location. Shifts elsewhere are skipped (and counted in the notes), so a
    shift booked before its location stopped counting is gone from the next listing, and its booking
    with it. `page_size`: records per page; `now` stamps the cursor.
    """

    def __init__(
        self,
        client: WhenIWorkClient,
        *,
        approved_statuses: frozenset[int] = APPROVED,
        office_locations: Sequence[int | str] | None = None,
        page_size: int = PAGE_SIZE,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.approved = approved_statuses
        self.office_locations = None if office_locations is None else tuple(office_locations)
        self.page_size = max(page_size, 1)
        self._now = now or (lambda: datetime.now(UTC))

    def people(self, cursor: str | None) -> Iterator[DirectoryPage]:
        """One complete round of users, with their locations and roles as groups; the cursor is ignored."""
        locations = self._locations()
        people = self._people()
        groups = _groups(people, locations)
        notes = self.client.notes.drain()
        pages = _chunks(tuple(p.record for p in people), self.page_size)
        for number, users in enumerate(pages, start=1):
            last = number == len(pages)
            yield DirectoryPage(
                users=users,
                groups=groups if last else (),  # after every user they name has been staged
                full_users=True,
                full_groups=True,
                cursor=self._cursor("people") if last else None,
                last=last,
                notes=notes if number == 1 else (),
            )

    def events(self, cursor: str | None, window: Window) -> Iterator[PeoplePage]:
        """Everyone's published shifts and approved time off overlapping `window`, as full pages."""
        locations = self._locations()
        people = self._people()
        first, last_day = query_window(window.start, window.end)
        shifts_body = self.client.get_json("shifts", {"start_time": first, "end_time": last_day})
        requests_body = self.client.get_json("requests", {"start": first, "end": last_day})
        emails = {p.id: p.record.email.lower() for p in people if p.record.email}
        # Requests sideload their users: someone gone from /users can still be named by a request.
        for sideloaded in map(translate.person, translate.listing(requests_body, "users", "requests", required=False)):
            if sideloaded.record.email:
                emails.setdefault(sideloaded.id, sideloaded.record.email.lower())
        offices, unknown = (
            (None, ()) if self.office_locations is None else translate.offices(self.office_locations, locations)
        )
        skipped: Counter[str] = Counter()
        found: list[PersonEvent] = []
        for obj in translate.listing(shifts_body, "shifts", "shifts"):
            found.extend(_kept(translate.shift(obj, emails, locations, skipped, offices=offices)))
        for obj in translate.listing(requests_body, "requests", "requests"):
            found.extend(_kept(translate.time_off(obj, emails, self.approved, skipped)))
        inside = tuple(e for e in found if e.event.start < window.end and e.event.end > window.start)
        notes = (
            *self.client.notes.drain(),
            *(f"office location {entry!r} is not a When I Work location" for entry in unknown),
            *(f"skipped {n} {why}" for why, n in sorted(skipped.items())),
        )
        pages = _chunks(inside, self.page_size)
        for number, events in enumerate(pages, start=1):
            last = number == len(pages)
            yield PeoplePage(
                events=events,
                full=True,
                cursor=self._cursor("events", window) if last else None,
                last=last,
                notes=notes if number == 1 else (),
            )

    def _locations(self) -> dict[int, str]:
        body = self.client.get_json("locations")
        return dict(map(translate.location, translate.listing(body, "locations", "locations")))

    def _people(self) -> list[translate.Person]:
        body = self.client.get_json("users")
        return [translate.person(obj) for obj in translate.listing(body, "users", "users")]

    def _cursor(self, kind: str, window: Window | None = None) -> str:
        data: dict[str, str] = {"v": "1", "kind": kind, "read_at": self._now().isoformat()}
        if window is not None:
            data |= {"start": window.start.isoformat(), "end": window.end.isoformat()}
        return json.dumps(data, separators=(",", ":"))


def _groups(people: Sequence[translate.Person], locations: dict[int, str]) -> tuple[DirectoryGroup, ...]:
    """Locations and roles as groups (DirectoryUser has no field for either), with their whole membership."""
    at: dict[int, set[str]] = {location_id: set() for location_id in locations}
    roles: dict[int, set[str]] = {code: set() for code in translate.ROLE_NAMES}
    for p in people:
        for location_id in p.locations:
            at.get(location_id, set()).add(p.record.external_id)  # an unlisted location is no group
        if p.role is not None:
            roles.setdefault(p.role, set()).add(p.record.external_id)
    by_location = (
        DirectoryGroup(f"location:{lid}", locations[lid], members=frozenset(ids)) for lid, ids in sorted(at.items())
    )
    by_role = (
        DirectoryGroup(f"role:{code}", translate.role_name(code), members=frozenset(ids))
        for code, ids in sorted(roles.items())
    )
    return (*by_location, *by_role)


def _kept(event: PersonEvent | None) -> tuple[PersonEvent, ...]:
    return () if event is None else (event,)


def _chunks(items: tuple[_T, ...], size: int) -> list[tuple[_T, ...]]:
    """`items` in pages of `size`; always at least one page, so an empty round still ends with a cursor."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [()]
