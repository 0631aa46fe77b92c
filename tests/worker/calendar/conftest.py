"""Calendars at their real boundaries: the fake Graph over TLS, the fake Google, a fake ICS host, and a
worker runtime pointed at them, on SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.google.calendar_service import CALENDAR_SCOPE
from store.db import make_session_factory, transaction
from store.models import Calendar, ConnectionKind, DirectoryPolicy, Member, OutboxEvent
from store.secret_box import SecretBox
from store.services import connections, members, organisations
from sync.directory.readers import DirectoryEndpoints
from tests.conftest import BROKER, QUEUE
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import App, FakeGraph
from tests.fakes.ics import FakeIcsServer
from tests.fakes.tls import TestTLS, make_tls
from worker import runtime
from worker.calendar import outbound
from worker.directory import sync as directory_sync
from worker.mailers.folder import FolderMailer
from worker.webhooks.sender import make_client

CLIENT_ID = "app-cal"
SECRET = "graph~secret"


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def graph(tls: TestTLS) -> Iterator[FakeGraph]:
    with FakeGraph(tls) as fake:
        fake.identity.apps[CLIENT_ID] = App(
            CLIENT_ID, secret=SECRET, permissions={"User.Read.All", "Group.Read.All", "Calendars.ReadWrite"}
        )
        fake.subscriptions.validate_urls = False  # no API listens in most of these tests
        fake.directory.add_user("u1", "ada@contoso.example", display_name="Ada", mail="ada@contoso.example")
        fake.directory.add_user("u2", "bob@contoso.example", display_name="Bob", mail="bob@contoso.example")
        fake.calendars.add_calendar("u1", "ada@contoso.example")
        fake.calendars.add_calendar("u2", "bob@contoso.example")
        yield fake


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        fake.delegated_scopes.add(CALENDAR_SCOPE)
        yield fake


@pytest.fixture
def ics() -> Iterator[FakeIcsServer]:
    with FakeIcsServer() as server:
        yield server


@dataclass
class World:
    """A worker runtime on the test's store (commits queue calendar writes), and one organisation."""

    runtime: runtime.Runtime
    organisation_id: int

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.runtime.session_factory

    def connect(self, kind: ConnectionKind, settings: dict[str, object], credentials: dict[str, object]) -> int:
        """A connection of the organisation; a directory is synced at once (its people and their calendars)."""
        with transaction(self.factory) as session:
            connection, _ = connections.create(
                session,
                self.runtime.secret_box,
                self.organisation_id,
                kind,
                kind.value,
                settings=settings,
                credentials=credentials,
            )
            connection_id = connection.id
        if kind is not ConnectionKind.ICS:
            assert directory_sync.run(self.runtime, connection_id) is not None
        return connection_id

    def calendar_id(self, email: str) -> int:
        with self.factory() as session:
            return session.scalars(
                select(Calendar.id).join(Member, Member.id == Calendar.member_id).where(Member.email == email)
            ).one()

    def calendar(self, calendar_id: int) -> Calendar:
        with self.factory() as session:
            return session.get_one(Calendar, calendar_id)

    def member_id(self, email: str) -> int:
        with self.factory() as session:
            return members.get_by_email(session, self.organisation_id, email).id

    def types(self) -> list[str]:
        with self.factory() as session:
            rows = session.scalars(
                select(OutboxEvent.type)
                .where(OutboxEvent.organisation_id == self.organisation_id)
                .order_by(OutboxEvent.seq)
            )
            return list(rows)


@pytest.fixture
def world(engine: Engine, graph: FakeGraph, google: FakeGoogle, tls: TestTLS, tmp_path: Path) -> World:
    factory = make_session_factory(engine, listeners=[outbound.on_commit])
    box = SecretBox([SecretBox.generate_key()])
    worker_runtime = runtime.Runtime(
        factory,
        FolderMailer(tmp_path),
        "https://deskbridge.example",
        "deskbridge <no-reply@deskbridge.test>",
        secret_box=box,
        webhook_client=make_client(allow_private=True),  # the fake ICS host is on loopback
        queue=QUEUE,
        directory=DirectoryEndpoints(
            microsoft_authority=graph.authority_host,
            graph_url=graph.graph_url,
            google_api_url=google.base_url,
            ca_bundle=str(tls.ca_bundle),
            allow_private=True,  # the fakes are on loopback
        ),
    )
    runtime.configure(worker_runtime)
    with transaction(factory) as session:
        organisation = organisations.create(session, "Contoso", timezone="Europe/Berlin")
        organisations.update_settings(session, organisation, directory_policy=DirectoryPolicy.AUTO_ACCEPT)
        organisation.office_rules = {"categories": ["Office"], "keywords": [], "working_elsewhere_with_location": False}
        return World(worker_runtime, organisation.id)


def microsoft(world: World, graph: FakeGraph) -> int:
    """A Microsoft connection reading calendars, synced: Ada and Bob are members with calendars."""
    return world.connect(
        ConnectionKind.MICROSOFT,
        {"tenant_id": graph.tenant_id, "client_id": CLIENT_ID, "calendars": True},
        {"client_secret": SECRET},
    )


def google_workspace(world: World, google: FakeGoogle) -> int:
    """A Google connection reading calendars, synced: its users are members with calendars."""
    return world.connect(
        ConnectionKind.GOOGLE,
        {"admin_email": google.admin_email, "calendars": True},
        {"service_account_key": google.service_account_info()},
    )


@contextmanager
def broker_down() -> Iterator[None]:
    """Every actor sends to Dramatiq's real RedisBroker pointed at a port where nothing listens until the
    block ends (each send fails as in a Redis outage), then to the suite's broker again."""
    down = RedisBroker(url="redis://127.0.0.1:1/0")  # type: ignore[no-untyped-call]
    moved = [BROKER.get_actor(name) for name in BROKER.get_declared_actors()]
    for actor in moved:
        actor.broker = down
    try:
        yield
    finally:
        for actor in moved:
            actor.broker = BROKER
        down.close()


def with_runtime(world: World, **changes: object) -> runtime.Runtime:
    """The world's runtime with some fields changed (configured as the current one)."""
    changed = replace(world.runtime, **changes)  # type: ignore[arg-type]
    runtime.configure(changed)
    return changed
