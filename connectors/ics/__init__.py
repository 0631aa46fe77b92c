"""ICS (iCalendar) feeds: a published calendar read as external events, and bookings written as a feed.

Reading: `IcsFeed(url).read(cursor, window)` (a CalendarReader), or `parse` + `expand` on bytes at hand.
Writing: `export.render(entries, name=…, domain=…)`.
"""

from connectors.ics.expand import Expansion, expand
from connectors.ics.export import render
from connectors.ics.feed import IcsFeed
from connectors.ics.fetch import redact
from connectors.ics.parse import parse

__all__ = ["Expansion", "IcsFeed", "expand", "parse", "redact", "render"]
