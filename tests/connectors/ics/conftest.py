"""Helpers for the ICS tests: windows in local time, calendars from text, and the fake feed host."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.ics import expand, parse
from connectors.ics.expand import Expansion
from connectors.records import CalendarEvent, Window
from tests.conftest import shared_data
from tests.fakes.ics import FakeIcsServer


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *, zone: str = "UTC"
) -> datetime:
    """An aware time from wall-clock parts in `zone`."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone))


def window(start: datetime, end: datetime | timedelta) -> Window:
    """[start, end) — `end` may be a length."""
    return Window(start, start + end if isinstance(end, timedelta) else end)


def day(year: int, month: int, day: int, *, zone: str = "UTC") -> Window:
    """One local day in `zone`."""
    following = date(year, month, day) + timedelta(days=1)
    return Window(at(year, month, day, zone=zone), at(following.year, following.month, following.day, zone=zone))


def calendar(*events: str, head: str = "") -> bytes:
    """A VCALENDAR around VEVENT bodies (lines separated by newlines), CRLF as RFC 5545 wants."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN", *head.split("\n")]
    for body in events:
        lines += ["BEGIN:VEVENT", *body.strip().split("\n"), "END:VEVENT"]
    return ("\r\n".join(line.strip() for line in lines if line.strip()) + "\r\nEND:VCALENDAR\r\n").encode()


def read(data: bytes, span: Window, *, default_timezone: str | None = None) -> Expansion:
    """Parse and expand bytes without HTTP."""
    parsed, notes = parse(data, where="test://feed/…")
    expansion = expand(parsed, span, default_timezone=default_timezone)
    return Expansion(expansion.events, notes + expansion.notes)


def reference(name: str, span: Window, *, default_timezone: str | None = None) -> Expansion:
    """A calendar of ../shared/reference/data/ics, read in place (skips when absent)."""
    return read(shared_data("ics", name).read_bytes(), span, default_timezone=default_timezone)


def titles(events: tuple[CalendarEvent, ...]) -> list[str]:
    return [event.title for event in events]


@pytest.fixture
def server() -> Iterator[FakeIcsServer]:
    with FakeIcsServer() as fake:
        yield fake


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


WIDE = Window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
