"""Which connector reads, writes and watches which calendar, built from its connection.

A person's Outlook calendar is read and written through the connection's Graph app as the person's
userPrincipalName (the calendar's `address`); a Google calendar through the service account acting
as the person (delegated subject = `address`); an ICS feed is fetched from the URL kept encrypted in
the connection's credentials, through the worker's SSRF-checked client, since a feed address is
typed in by a customer just like a webhook URL.
"""

from __future__ import annotations

from dataclasses import replace

import httpx
from sqlalchemy.orm import Session

from connectors.kind import CalendarBatch, CalendarSource
from connectors.kinds import REGISTRY
from connectors.push import PushSubscriber
from connectors.records import CalendarReader, CalendarWriter, ConnectorError
from store.models import Calendar, Connection, Organisation
from store.secret_box import SecretBox
from store.services import connections
from sync.directory.readers import DirectoryEndpoints

Source = CalendarSource  # kind, settings, credentials, address (empty: a connection's, see `batch`), timezone


def make_reader(source: Source, endpoints: DirectoryEndpoints, http: httpx.Client) -> CalendarReader:
    """The connector that reads the calendar."""
    factory = REGISTRY.get(source.kind).calendar_reader
    if factory is None:
        raise ConnectorError(f"{source.kind} connections have no calendars")
    return factory(source, endpoints, http)


def batch(source: Source, endpoints: DirectoryEndpoints, http: httpx.Client) -> CalendarBatch:
    """The readers of one connection's calendars for one job (a batch), sharing what its kind can share
    (Outlook: one Graph sign-in and JSON batches; Google: the signer, each thread's connections)."""
    return REGISTRY.get(source.kind).batch(source, endpoints, http)


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
    """What every calendar of the connection is read from (no address: see `batch`)."""
    return Source(
        kind=connection.kind,
        settings=dict(connection.settings),
        credentials=connections.credentials(box, connection),
        address="",
        timezone=organisation.timezone,
    )
