"""Many Outlook calendars of one connection read in one job: one Graph sign-in and keep-alive pool for every
mailbox, each thread's mailboxes' first requests sent together in one JSON batch (`graph_batch`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from connectors.microsoft import graph_batch
from connectors.microsoft.calendar import OutlookCalendar
from connectors.microsoft.calendar_events import CALENDARS_PERMISSION
from connectors.microsoft.graph import GraphClient
from connectors.records import CalendarPage, ConnectorError, Window


class OutlookBatch:
    """A `CalendarBatch` (connectors/kind.py) over one tenant's mailboxes."""

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    def read(
        self, address: str, cursor: str | None, window: Window, first: dict[str, Any] | None
    ) -> Iterator[CalendarPage]:
        # Each reader its own client over the shared sign-in, so its notes stay its own.
        return OutlookCalendar(self._graph.sharing(), address).read(cursor, window, first=first)

    def first_pages(self, calendars: Sequence[tuple[str, str | None]], window: Window) -> list[dict[str, Any] | None]:
        """Each mailbox's first answer, up to 20 to one HTTP request; None for all when the batch itself fails
        (each reader asks alone, and says why if it fails too)."""
        requests = [
            OutlookCalendar(self._graph, address).first_request(cursor, window) for address, cursor in calendars
        ]
        try:
            return graph_batch.get_many(self._graph.sharing(), requests, permission=CALENDARS_PERMISSION)
        except ConnectorError:
            return [None] * len(calendars)

    def close(self) -> None:
        """Close the shared connections (the sign-in goes with them)."""
        self._graph.close()
