"""A person's primary Google calendar as calendar rounds (`CalendarReader`), following Google's sync guide.

A full round lists the window (`events.list` with `singleEvents`, so recurring events come as their
instances, `timeMin`/`timeMax`, pages of up to 2,500); `nextSyncToken` comes on the last page only and
is kept in the cursor with the window it was made for. An incremental round passes that token alone:
Google refuses `timeMin`/`timeMax` (and `showDeleted=false`) beside a sync token and answers every
change since, deletions and cancelled instances included, wherever they lie. So we filter: an event
that now lies outside the window is reported removed (it may have been moved out of it).

A sync token Google no longer honours (410 `fullSyncRequired`) starts a full listing with a note. The
token knows nothing about the days that entered the window since it was made (events there that did
not change will never come incrementally), so a window reaching past the cursor's is read in full too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.google.calendar_events import overlaps, to_record
from connectors.google.calendar_service import CalendarService, GoogleGone
from connectors.google.service import GoogleSettings
from connectors.records import CalendarEvent, CalendarPage, RemovedEvent, Window

PAGE_SIZE = 2500  # events.list allows up to 2,500


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """What a round ends with: Google's sync token and the window the full listing behind it covered."""

    sync_token: str | None
    start: datetime
    end: datetime

    def covers(self, window: Window) -> bool:
        """Whether the token's listing saw all of `window` (a window that shrank is fine: we filter)."""
        return self.start <= window.start and window.end <= self.end

    def dump(self) -> str:
        """The cursor as the worker stores it."""
        return json.dumps(
            {"v": 1, "syncToken": self.sync_token, "start": self.start.isoformat(), "end": self.end.isoformat()}
        )

    @staticmethod
    def load(text: str) -> SyncCursor | None:
        """A stored cursor, or None when it is not one of ours (then the round starts over)."""
        try:
            data = json.loads(text)
            token = data.get("syncToken")
            return SyncCursor(
                sync_token=str(token) if token else None,
                start=datetime.fromisoformat(data["start"]),
                end=datetime.fromisoformat(data["end"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class GoogleCalendar:
    """Reads one person's primary calendar (one instance per thread: httplib2 is not thread-safe)."""

    def __init__(
        self,
        settings: GoogleSettings,
        person: str,
        *,
        page_size: int = PAGE_SIZE,
        service: CalendarService | None = None,
    ) -> None:
        """Prepare a reader acting as `person` (their address); builds the service (no network) unless given."""
        self.settings = settings
        self.person = person
        self.page_size = max(1, min(page_size, PAGE_SIZE))
        self.service = service or CalendarService(settings, person)

    def read(self, cursor: str | None, window: Window) -> Iterator[CalendarPage]:
        """One round: the changes since `cursor`, or the whole window when there is none or it no longer fits."""
        state = SyncCursor.load(cursor) if cursor is not None else None
        if state is None or state.sync_token is None:
            notes = () if cursor is None else ("the stored cursor was unreadable: read the whole window again",)
            yield from self._full(window, notes)
        elif not state.covers(window):
            yield from self._full(window, ("the window moved: read the whole window again",))
        else:
            yield from self._incremental(state, window)

    def _full(self, window: Window, notes: tuple[str, ...]) -> Iterator[CalendarPage]:
        page_token: str | None = None
        while True:
            body = self._list(
                "listing the calendar",
                timeMin=_rfc3339(window.start),
                timeMax=_rfc3339(window.end),
                pageToken=page_token,
            )
            events, removed = self._records(body, window)
            page_token = body.get("nextPageToken")
            notes = notes + self.service.take_notes()
            if page_token:
                yield CalendarPage(events=events, removed=removed, full=True, notes=notes)
                notes = ()
                continue
            done = SyncCursor(body.get("nextSyncToken"), window.start, window.end)
            yield CalendarPage(events=events, removed=removed, full=True, cursor=done.dump(), last=True, notes=notes)
            return

    def _incremental(self, state: SyncCursor, window: Window) -> Iterator[CalendarPage]:
        page_token: str | None = None
        while True:
            try:
                body = self._list("reading calendar changes", syncToken=state.sync_token, pageToken=page_token)
            except GoogleGone as gone:
                # Google forgot the token (or never had it): the sync guide's answer is a full listing.
                note = f"Google no longer accepts the sync token ({gone.reason or '410 Gone'}): read the whole window"
                yield from self._full(window, (note,))
                return
            events, removed = self._records(body, window)
            page_token = body.get("nextPageToken")
            notes = self.service.take_notes()
            if page_token:
                yield CalendarPage(events=events, removed=removed, notes=notes)
                continue
            # The token's window stays the one its full listing covered: that is what it knows about.
            done = SyncCursor(body.get("nextSyncToken"), state.start, state.end)
            yield CalendarPage(events=events, removed=removed, cursor=done.dump(), last=True, notes=notes)
            return

    def _list(self, what: str, **query: Any) -> dict[str, Any]:
        params = {key: value for key, value in query.items() if value is not None}
        return self.service.call(
            lambda _: self.service.events().list(
                calendarId="primary", singleEvents=True, maxResults=self.page_size, **params
            ),
            what,
        )

    def _records(
        self, body: dict[str, Any], window: Window
    ) -> tuple[tuple[CalendarEvent, ...], tuple[RemovedEvent, ...]]:
        zone = body.get("timeZone")
        events: list[CalendarEvent] = []
        removed: list[RemovedEvent] = []
        for item in body.get("items") or ():
            record = to_record(item, zone)
            if isinstance(record, CalendarEvent):
                if overlaps(record, window):
                    events.append(record)
                else:  # moved out of the window (or never in it): whatever we kept of it is stale
                    removed.append(RemovedEvent(record.event_id))
            elif isinstance(record, RemovedEvent):
                removed.append(record)
        return tuple(events), tuple(removed)


def _rfc3339(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
