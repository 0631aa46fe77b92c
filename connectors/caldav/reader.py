"""Reads a person's CalDAV calendars: a sync-collection REPORT says whether anything changed (the library
falls back to comparing etags where the server has none); a changed calendar is read for the window and
expanded like an ICS feed (connectors/ics/expand.py), recurring events included."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import icalendar
from caldav.collection import Calendar

from connectors.caldav.account import CalDavAccount, answered, translated_errors
from connectors.ics.expand import expand
from connectors.ics.parse import parse
from connectors.records import CalendarPage, Window

CURSOR_VERSION = "1"


class CalDavCalendar:
    """A CalendarReader of every event calendar of the account (one round: one page, full and last)."""

    def __init__(self, account: CalDavAccount, *, default_timezone: str | None = None) -> None:
        self._account = account
        self._default_timezone = default_timezone

    def read(self, cursor: str | None, window: Window) -> Iterator[CalendarPage]:
        basis = hashlib.sha256(
            f"{CURSOR_VERSION}|{window.start.isoformat()}|{window.end.isoformat()}|{self._default_timezone}".encode()
        ).hexdigest()[:16]
        previous = _load(cursor)
        usable: dict[str, Any] = previous if previous is not None and previous.get("basis") == basis else {}
        with self._account.calendars() as calendars, translated_errors():
            tokens = {str(item.url): _token(item, usable.get("tokens", {}).get(str(item.url))) for item in calendars}
            changed = [str(item.url) for item in calendars if tokens[str(item.url)][1]]
            next_cursor = json.dumps(
                {"basis": basis, "tokens": {url: token for url, (token, _) in tokens.items()}}, separators=(",", ":")
            )
            if usable and not changed and set(tokens) == set(usable.get("tokens", {})):
                yield CalendarPage(cursor=next_cursor, last=True)  # nothing changed since the last round
                return
            merged = icalendar.Calendar()
            notes: list[str] = []
            for item in calendars:
                found: Any
                for found in answered(item.search(start=window.start, end=window.end, event=True, expand=False)):
                    parsed, parse_notes = parse(found.data.encode(), where=f"CalDAV {found.url}")
                    notes.extend(parse_notes)
                    for component in parsed.subcomponents:
                        merged.add_component(component)
        expansion = expand(merged, window, default_timezone=self._default_timezone)
        yield CalendarPage(
            events=expansion.events, full=True, cursor=next_cursor, last=True, notes=(*notes, *expansion.notes)
        )


def _token(calendar: Calendar, token: str | None) -> tuple[str | None, bool]:
    """The calendar's sync token now, and whether it changed since `token` (no token: changed)."""
    result = answered(calendar.get_objects_by_sync_token(token, load_objects=False))
    changed = token is None or bool(result.objects) or bool(getattr(result, "deleted_urls", None))
    return (str(result.sync_token) if result.sync_token is not None else None), changed


def _load(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("tokens"), dict) else None
