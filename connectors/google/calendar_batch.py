"""Many Google calendars of one connection read in one job: each person still signs in as themselves (domain-wide
delegation gives a token per subject), sharing the service account's signer and each thread's connections
(httplib2 is not thread-safe, so one pool per thread)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httplib2  # type: ignore[import-untyped]

from connectors.google.calendar import GoogleCalendar
from connectors.google.calendar_service import CalendarService
from connectors.google.service import GoogleSettings
from connectors.records import CalendarPage, Window


class GoogleBatch:
    """A `CalendarBatch` (connectors/kind.py) over one Workspace's people."""

    def __init__(self, settings: GoogleSettings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._opened: list[httplib2.Http] = []
        self._lock = threading.Lock()

    def read(
        self, address: str, cursor: str | None, window: Window, first: dict[str, Any] | None
    ) -> Iterator[CalendarPage]:
        service = CalendarService(self._settings, address, http=self._thread_http())
        return iter(GoogleCalendar(self._settings, address, service=service).read(cursor, window))

    def first_pages(self, calendars: Sequence[tuple[str, str | None]], window: Window) -> list[dict[str, Any] | None]:
        return [None] * len(calendars)  # each person's requests carry their own token: none are sent together

    def _thread_http(self) -> httplib2.Http:
        http: httplib2.Http | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = httplib2.Http(timeout=self._settings.timeout)
            with self._lock:
                self._opened.append(http)
        return http

    def close(self) -> None:
        """Close every thread's connections."""
        with self._lock:
            for http in self._opened:
                http.close()
            self._opened.clear()
