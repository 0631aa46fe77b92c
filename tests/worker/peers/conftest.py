"""Peer platforms end to end: each fake platform on loopback, a worker runtime pointed at them, and an
organisation (auto-accept, so people become active members at once) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_session_factory, transaction
from store.models import Booking, Connection, ConnectionKind, DirectoryPolicy, ExternalEvent, Member, OutboxEvent
from store.secret_box import SecretBox
from store.services import connections, organisations
from sync.directory.readers import DirectoryEndpoints
from sync.peers import rosters
from tests.conftest import QUEUE
from tests.fakes.kadence import FakeKadence
from tests.fakes.resourceguru import FakeResourceGuru
from tests.fakes.wheniwork import FakeWhenIWork
from worker import runtime
from worker.directory import sync as directory_sync
from worker.mailers.folder import FolderMailer
from worker.webhooks.sender import make_client


def today_at(hour: int, days: int = 0) -> datetime:
    """A time inside the calendar window (which starts a day back and runs weeks ahead)."""
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=days), time(hour), tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_rosters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own roster cache: connection ids repeat from one test's store to the next."""
    monkeypatch.setattr(rosters, "ROSTERS", rosters.RosterCache())


@pytest.fixture
def wheniwork() -> Iterator[FakeWhenIWork]:
    with FakeWhenIWork() as fake:
        yield fake


@pytest.fixture
def kadence() -> Iterator[FakeKadence]:
    with FakeKadence() as fake:
        yield fake


@pytest.fixture
def resourceguru() -> Iterator[FakeResourceGuru]:
    with FakeResourceGuru() as fake:
        yield fake


@dataclass
class World:
    """A worker runtime on the test's store, and one organisation."""

    runtime: runtime.Runtime
    organisation_id: int

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.runtime.session_factory

    def connect(self, kind: ConnectionKind, settings: Mapping[str, object], credentials: Mapping[str, object]) -> int:
        with transaction(self.factory) as session:
            connection, _ = connections.create(
                session,
                self.runtime.secret_box,
                self.organisation_id,
                kind,
                kind.value,
                settings=dict(settings),
                credentials=dict(credentials),
            )
            return connection.id

    def sync(self, connection_id: int) -> Connection:
        """Sync the connection as the worker does (the directory actor hands peer kinds on); its state after."""
        directory_sync.run(self.runtime, connection_id)
        return self.connection(connection_id)

    def connection(self, connection_id: int) -> Connection:
        with self.factory() as session:
            return session.get_one(Connection, connection_id)

    def credentials(self, connection_id: int) -> dict[str, object]:
        return connections.credentials(self.runtime.secret_box, self.connection(connection_id))

    def members(self) -> dict[str, str]:
        """Email → status of the organisation's members."""
        with self.factory() as session:
            rows = session.execute(
                select(Member.email, Member.status).where(Member.organisation_id == self.organisation_id)
            )
            return {email: status.value for email, status in rows}

    def events(self) -> dict[str, ExternalEvent]:
        with self.factory() as session:
            return {row.event_id: row for row in session.scalars(select(ExternalEvent))}

    def bookings(self) -> list[Booking]:
        with self.factory() as session:
            return list(session.scalars(select(Booking).order_by(Booking.id)))

    def types(self) -> list[str]:
        with self.factory() as session:
            return list(session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.seq)))


@pytest.fixture
def world(engine: Engine, tmp_path: Path, request: pytest.FixtureRequest) -> World:
    endpoints = DirectoryEndpoints()
    if "wheniwork" in request.fixturenames:
        endpoints = DirectoryEndpoints(wheniwork_url=request.getfixturevalue("wheniwork").base_url)
    if "kadence" in request.fixturenames:
        fake = request.getfixturevalue("kadence")
        endpoints = DirectoryEndpoints(kadence_api_url=fake.base_url, kadence_token_url=fake.token_url)
    if "resourceguru" in request.fixturenames:
        endpoints = DirectoryEndpoints(resourceguru_url=request.getfixturevalue("resourceguru").base_url)
    factory = make_session_factory(engine)
    worker_runtime = runtime.Runtime(
        factory,
        FolderMailer(tmp_path),
        "https://deskbridge.example",
        "deskbridge <no-reply@deskbridge.test>",
        secret_box=SecretBox([SecretBox.generate_key()]),
        webhook_client=make_client(allow_private=True),
        queue=QUEUE,
        directory=endpoints,
    )
    runtime.configure(worker_runtime)
    with transaction(factory) as session:
        organisation = organisations.create(session, "Contoso")
        organisations.update_settings(session, organisation, directory_policy=DirectoryPolicy.AUTO_ACCEPT)
        return World(worker_runtime, organisation.id)
