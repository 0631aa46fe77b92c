"""Which connector reads, writes and watches which calendar, built from its connection.

A person's Outlook calendar is read and written through the connection's Graph app as the person's
userPrincipalName (the calendar's `address`); a Google calendar through the service account acting
as the person (delegated subject = `address`); an ICS feed is fetched from the URL kept encrypted in
the connection's credentials, through the worker's SSRF-checked client, since a feed address is
typed in by a customer just like a webhook URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import httplib2  # type: ignore[import-untyped]
import httpx
from sqlalchemy.orm import Session

from connectors import google, microsoft
from connectors.google.kind import KIND as GOOGLE
from connectors.google.kind import google_settings
from connectors.kind import CalendarSource
from connectors.kinds import REGISTRY
from connectors.microsoft import graph_batch
from connectors.microsoft.calendar_events import CALENDARS_PERMISSION
from connectors.microsoft.kind import KIND as MICROSOFT
from connectors.microsoft.kind import graph_client
from connectors.push import PushSubscriber
from connectors.records import CalendarPage, CalendarReader, CalendarWriter, ConnectorError, Window
from store.models import Calendar, Connection, Organisation
from store.secret_box import SecretBox
from store.services import connections
from sync.directory.readers import DirectoryEndpoints

Source = CalendarSource  # kind, settings, credentials, address (empty: see `ConnectionReaders.reader`), timezone


def make_reader(source: Source, endpoints: DirectoryEndpoints, http: httpx.Client) -> CalendarReader:
    """The connector that reads the calendar."""
    factory = REGISTRY.get(source.kind).calendar_reader
    if factory is None:
        raise ConnectorError(f"{source.kind} connections have no calendars")
    return factory(source, endpoints, http)


class ConnectionReaders:
    """The readers of one connection's calendars for one batch (one job), sharing what can be shared.

    Outlook: one Graph sign-in (one msal application and its token) and one pool of keep-alive
    connections for every mailbox of the batch. Google acts as each person (a token per subject,
    as domain-wide delegation works), sharing the service account's signer. Nothing outlives the
    batch (`close`): the next job signs in afresh, so a revoked app or key is noticed at once.
    """

    def __init__(self, source: Source, endpoints: DirectoryEndpoints, http: httpx.Client) -> None:
        self._source = source
        self._endpoints = endpoints
        self._http = http
        self._graph: microsoft.GraphClient | None = None
        self._google: google.GoogleSettings | None = None
        # Shared across the batch where the connector can share (a Graph sign-in, a Google signer).
        if source.kind == MICROSOFT.name:
            self._graph = graph_client(source.settings, source.credentials, endpoints)
        elif source.kind == GOOGLE.name:
            self._google = google_settings(source.settings, source.credentials, endpoints)
        self._local = threading.local()  # Google: each thread's connections (httplib2 is not thread-safe)
        self._opened: list[httplib2.Http] = []
        self._lock = threading.Lock()

    def reader(self, address: str) -> CalendarReader:
        """The reader of the connection's calendar at `address` (one per calendar, used on one thread)."""
        if self._graph is not None:
            return microsoft.OutlookCalendar(self._graph.sharing(), address)
        if self._google is not None:
            service = google.CalendarService(self._google, address, http=self._thread_http(self._google))
            return google.GoogleCalendar(self._google, address, service=service)
        return make_reader(replace(self._source, address=address), self._endpoints, self._http)

    def read(
        self, address: str, cursor: str | None, window: Window, first: dict[str, Any] | None
    ) -> Iterator[CalendarPage]:
        """The round of the calendar at `address` from `cursor`; `first`: its first answer, from `first_pages`."""
        reader = self.reader(address)
        if first is not None and isinstance(reader, microsoft.OutlookCalendar):
            return reader.read(cursor, window, first=first)
        return iter(reader.read(cursor, window))

    def first_pages(self, calendars: Sequence[tuple[str, str | None]], window: Window) -> list[dict[str, Any] | None]:
        """The first answer of each (address, cursor)'s round, fetched together where the source takes
        several requests at once (Graph's JSON batching: one HTTP request for up to 20 mailboxes); None
        where it was not (that reader asks alone, with the usual retries and messages)."""
        if self._graph is None:
            return [None] * len(calendars)
        requests = [
            microsoft.OutlookCalendar(self._graph, address).first_request(cursor, window)
            for address, cursor in calendars
        ]
        try:
            return graph_batch.get_many(self._graph.sharing(), requests, permission=CALENDARS_PERMISSION)
        except ConnectorError:
            return [None] * len(calendars)  # each reader asks alone, and says why if it fails too

    def _thread_http(self, settings: google.GoogleSettings) -> httplib2.Http:
        http: httplib2.Http | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = httplib2.Http(timeout=settings.timeout)
            with self._lock:
                self._opened.append(http)
        return http

    def close(self) -> None:
        """Close the shared connections (the sign-in goes with them)."""
        if self._graph is not None:
            self._graph.close()
        with self._lock:
            for http in self._opened:
                http.close()
            self._opened.clear()


def make_writer(source: Source, endpoints: DirectoryEndpoints, http: httpx.Client) -> CalendarWriter | None:
    """The connector that writes bookings into the calendar; None for a read-only one (a feed)."""
    factory = REGISTRY.get(source.kind).calendar_writer
    return None if factory is None else factory(source, endpoints, http)


def make_subscriber(source: Source, endpoints: DirectoryEndpoints) -> PushSubscriber | None:
    """The connector that opens push channels on the calendar's events; None where there are none (feeds)."""
    factory = REGISTRY.get(source.kind).calendar_subscriber
    return None if factory is None else factory(source, endpoints)


def source_of(session: Session, box: SecretBox, calendar: Calendar) -> Source:
    """The calendar's source, read in the caller's transaction (credentials decrypted for the connector only)."""
    connection = session.get_one(Connection, calendar.connection_id)
    organisation = session.get_one(Organisation, calendar.organisation_id)
    return replace(connection_source(box, connection, organisation), address=calendar.address)


def connection_source(box: SecretBox, connection: Connection, organisation: Organisation) -> Source:
    """What every calendar of the connection is read from (no address: see `ConnectionReaders.reader`)."""
    return Source(
        kind=connection.kind,
        settings=dict(connection.settings),
        credentials=connections.credentials(box, connection),
        address="",
        timezone=organisation.timezone,
    )
