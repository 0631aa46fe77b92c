"""Kadence as a peer platform (`PeopleReader`): its users, everyone's office bookings, its desks.

Kadence offers no delta and no webhooks, so every round is a complete listing: `people` lists the
users, `events` the bookings that overlap the window (the documented `startDateTime[strictly_before]`
and `endDateTime[strictly_after]` filters, in the UTC `YYYY-MM-DDThh:mm:ss` form the document gives).
Every page is `full`, and the cursor on the last page is the time the round started: Kadence needs
none, but the worker can see when the last complete round began.

A round is read and checked whole before its first page is handed over: one malformed record
stops it with a ConnectorError and the worker has applied nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from connectors.kadence.client import KadenceClient
from connectors.kadence.translate import (
    OFFICE_TYPES,
    Building,
    booking_head,
    to_building,
    to_desk,
    to_event,
    to_user,
)
from connectors.records import DirectoryPage, PeerDesk, PeoplePage, PersonEvent, Window

USERS = "/v1/public/users"
BOOKINGS = "/v1/public/bookings"
BUILDINGS = "/v1/public/buildings"
SPACES = "/v1/public/spaces"
T = TypeVar("T")


class Kadence:
    """Reads one Kadence company (the API client's credentials name it).

    `page_size` is both the `itemsPerPage` asked for and the records per page handed over; `types`
    are the booking types that count as office days (see translate.OFFICE_TYPES).
    """

    def __init__(
        self,
        client: KadenceClient,
        *,
        page_size: int = 200,
        types: frozenset[str] = OFFICE_TYPES,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.types = types
        self.now = now

    def people(self, cursor: str | None) -> Iterator[DirectoryPage]:
        """Every user, as one complete round whatever the cursor."""
        started = self.now().isoformat()
        users = [to_user(item) for item in self._list(USERS, {}, "users")]
        chunks = _chunks(users, self.page_size)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            yield DirectoryPage(
                users=chunk,
                full_users=True,
                cursor=started if last else None,
                last=last,
                notes=self.client.notes.drain() if last else (),
            )

    def events(self, cursor: str | None, window: Window) -> Iterator[PeoplePage]:
        """Every office booking overlapping `window`, cancelled ones included (as cancelled events)."""
        started = self.now().isoformat()
        emails = {user.external_id: user.email for user in map(to_user, self._list(USERS, {}, "users"))}
        buildings = self._buildings()
        params = {
            "startDateTime[strictly_before]": _filter_time(window.end, up=True),
            "endDateTime[strictly_after]": _filter_time(window.start, up=False),
            "order[startDate]": "asc",  # a stable order, so page boundaries mean the same on every page
        }
        events: list[PersonEvent] = []
        unknown_people = 0
        for item in self._list(BOOKINGS, params, "bookings"):
            head = booking_head(item)
            if head.type not in self.types:
                continue
            person = emails.get(head.user or "")
            if person is None:  # a guest, or a user Kadence no longer lists (their bookings are cancelled)
                unknown_people += 1
                continue
            events.append(to_event(item, person, buildings))
        notes = list(self.client.notes.drain())
        if unknown_people:
            notes.append(f"{unknown_people} Kadence booking(s) skipped: not for a listed user with an address")
        chunks = _chunks(events, self.page_size)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            yield PeoplePage(
                events=chunk,
                full=True,
                cursor=started if last else None,
                last=last,
                notes=tuple(notes) if last else (),
            )

    def desks(self) -> list[PeerDesk]:
        """Every space of type desk, building by building (spaces name their floor, not their building)."""
        desks: dict[str, PeerDesk] = {}
        for ulid, building in self._buildings().items():
            for item in self._list(SPACES, {"buildingId": ulid}, f"spaces of building {ulid}"):
                if item.get("type") == "desk":
                    desk = to_desk(item, building)
                    desks.setdefault(desk.external_id, desk)
        return list(desks.values())

    def _buildings(self) -> dict[str, Building]:
        return dict(to_building(item) for item in self._list(BUILDINGS, {}, "buildings"))

    def _list(self, path: str, params: Mapping[str, str | int], what: str) -> list[dict[str, object]]:
        return self.client.collection(path, params, what=what, page_size=self.page_size)


def _filter_time(value: datetime, *, up: bool) -> str:
    """A window edge as the filters take it: UTC without an offset, to the second (rounded outward)."""
    utc = value.astimezone(UTC)
    if up and utc.microsecond:
        utc += timedelta(seconds=1)
    return utc.replace(microsecond=0, tzinfo=None).isoformat()


def _chunks(items: Sequence[T], size: int) -> list[tuple[T, ...]]:
    """`items` in pages of `size`; always at least one (empty) page, which carries the cursor."""
    return [tuple(items[start : start + size]) for start in range(0, len(items), size)] or [()]
