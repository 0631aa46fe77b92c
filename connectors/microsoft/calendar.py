"""One person's Outlook calendar through Graph's calendarView delta, as rounds of CalendarPages.

`GET /users/{id}/calendarView/delta?startDateTime=…&endDateTime=…` lists the events (single
events, occurrences and exceptions of series, never series masters) overlapping the window; its
nextLinks lead to a deltaLink whose next use returns what changed since, `@removed` entries
included. The window is encoded in Graph's state token and cannot change, so the cursor keeps it:
when the worker's window has moved, the old deltaLink is dropped and the window listed afresh
(`full` pages), which is also how events that slid into the window arrive. The window is widened
to whole UTC days first, so a window computed from "now" moves (and costs a full listing) once a
day, not on every round.

Every request asks `Prefer: outlook.timezone` (UTC unless told otherwise) and
`Prefer: odata.maxpagesize`; times are read with whatever zone Graph names, Windows names included.
A 410 Gone or a `syncStateNotFound`/`resyncRequired` error starts the listing again (bounded), with
a note. Our own events come back with their booking id (see calendar_events).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from connectors.microsoft.calendar_events import (
    CALENDARS_PERMISSION,
    event_from_graph,
    is_removed,
    removed_from_graph,
)
from connectors.microsoft.graph import GraphClient, GraphError
from connectors.records import CalendarEvent, CalendarPage, ConnectorError, RemovedEvent, Window

_CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a round starts: the deltaLink to follow (None: a full listing from `initial`), the window, notes."""

    link: str | None
    initial: str
    start: str
    end: str
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CalendarCursor:
    """Where the next round starts: the deltaLink and the window it was made for."""

    delta_link: str
    start: str  # the window, as sent to Graph
    end: str

    def encode(self) -> str:
        """The opaque string handed to the worker."""
        data = {"v": _CURSOR_VERSION, "link": self.delta_link, "start": self.start, "end": self.end}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> CalendarCursor:
        """Read a cursor made by `encode`; ValueError for anything else."""
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError("not an Outlook calendar cursor") from None
        if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
            raise ValueError("not an Outlook calendar cursor")
        values = (data.get("link"), data.get("start"), data.get("end"))
        if not all(isinstance(value, str) and value for value in values):
            raise ValueError("not an Outlook calendar cursor")
        return cls(delta_link=data["link"], start=data["start"], end=data["end"])


def whole_days(window: Window) -> Window:
    """`window` widened to midnight UTC at both ends (a window already on midnights is unchanged)."""
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    start = window.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = window.end.astimezone(UTC)
    floor = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(start, floor if floor == end else floor + timedelta(days=1))


def graph_instant(moment: datetime) -> str:
    """A window bound as calendarView wants it: ISO 8601 in UTC with a Z (no `+`, which a URL would garble)."""
    if moment.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OutlookCalendar:
    """A CalendarReader for one person's primary Outlook calendar.

    `user` is the Graph user id or userPrincipalName. `timezone` is the zone asked for with
    `Prefer: outlook.timezone` (a Windows or IANA name; UTC saves a conversion); `page_size` the
    `odata.maxpagesize` asked for (Graph may send fewer).
    """

    def __init__(
        self,
        graph: GraphClient,
        user: str,
        *,
        page_size: int = 100,
        timezone: str = "UTC",
        max_resyncs: int = 2,
    ) -> None:
        self._graph = graph
        self.user = user
        self._headers = (("Prefer", f'outlook.timezone="{timezone}"'), ("Prefer", f"odata.maxpagesize={page_size}"))
        self._max_resyncs = max_resyncs

    def initial_url(self, window: Window) -> str:
        """The first request of a full listing of `window`."""
        return (
            f"users/{quote(self.user, safe='@')}/calendarView/delta"
            f"?startDateTime={graph_instant(window.start)}&endDateTime={graph_instant(window.end)}"
        )

    def read(
        self, cursor: str | None, window: Window, *, first: dict[str, Any] | None = None
    ) -> Iterator[CalendarPage]:
        """Read one round: the whole window (no cursor, or a cursor that no longer fits), or the changes since.

        `first`: the answer to `first_request` fetched already (in a JSON batch with other mailboxes'):
        the round starts from it instead of asking again.
        """
        plan = self._plan(cursor, window)
        yield from self._pages(plan.link, plan.initial, plan.start, plan.end, list(plan.notes), first)

    def first_request(self, cursor: str | None, window: Window) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What `read` asks first, as (URL or path, headers), for sending it in a JSON batch."""
        plan = self._plan(cursor, window)
        return plan.link or plan.initial, self._headers

    def _plan(self, cursor: str | None, window: Window) -> _Plan:
        window = whole_days(window)
        start, end = graph_instant(window.start), graph_instant(window.end)
        notes: list[str] = []
        link: str | None = None
        if cursor is not None:
            try:
                known = CalendarCursor.decode(cursor)
            except ValueError:
                notes.append("the stored calendar cursor was not readable; listing the window again")
            else:
                if (known.start, known.end) == (start, end):
                    link = known.delta_link
                else:
                    # Graph's token holds the old window; a new window needs a new baseline.
                    notes.append(f"the window moved (now {start} to {end}); listing it again")
        return _Plan(link, self.initial_url(window), start, end, tuple(notes))

    def _pages(
        self, link: str | None, initial: str, start: str, end: str, notes: list[str], first: dict[str, Any] | None
    ) -> Iterator[CalendarPage]:
        full = link is None
        url = link or initial
        resyncs = 0
        while True:
            try:
                if first is not None:  # fetched already, in a batch
                    body, first = first, None
                else:
                    body = self._graph.get_json(url, permission=CALENDARS_PERMISSION, headers=self._headers)
            except GraphError as error:
                if error.status == 404:
                    raise ConnectorError(
                        f"Graph has no calendar for {self.user} ({error.code}): the account needs an "
                        "Exchange Online mailbox",
                        action_required=True,
                    ) from None
                if not error.resync or resyncs >= self._max_resyncs:
                    raise
                resyncs += 1
                notes.append(
                    f"Graph no longer knows the calendar sync state of {self.user} "
                    f"({error.status} {error.code or 'Gone'}); listing the window again"
                )
                url, full = initial, True
                continue
            items = body.get("value")
            next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
            if not isinstance(items, list) or not isinstance(next_link or delta_link, str):
                raise ConnectorError("Graph calendarView delta page without value or next/delta link")
            events, removed = self._translate([item for item in items if isinstance(item, dict)])
            last = isinstance(delta_link, str)
            yield CalendarPage(
                events=events,
                removed=removed,
                full=full,
                cursor=CalendarCursor(str(delta_link), start, end).encode() if last else None,
                last=last,
                notes=(*notes, *self._graph.notes.drain()),
            )
            notes = []
            if last:
                return
            url = str(next_link)

    @staticmethod
    def _translate(items: list[dict[str, object]]) -> tuple[tuple[CalendarEvent, ...], tuple[RemovedEvent, ...]]:
        events: list[CalendarEvent] = []
        removed: list[RemovedEvent] = []
        for item in items:
            if not isinstance(item.get("id"), str) or not item["id"]:
                continue
            if is_removed(item):
                removed.append(removed_from_graph(item))
            elif item.get("type") != "seriesMaster":  # calendarView expands series; a master is no slot in time
                events.append(event_from_graph(item))
        return tuple(events), tuple(removed)
