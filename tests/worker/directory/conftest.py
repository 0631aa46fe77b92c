"""The fake Graph over TLS and a worker runtime pointed at it, on a SQLite or PostgreSQL store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_session_factory, transaction
from store.models import Connection, ConnectionKind
from store.secret_box import SecretBox
from store.services import connections, organisations
from sync.directory.readers import DirectoryEndpoints
from tests.conftest import QUEUE
from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import TestTLS, make_tls
from worker import runtime
from worker.mailers.folder import FolderMailer
from worker.webhooks.sender import make_client

CLIENT_ID = "app-0002"
SECRET = "graph~secret"


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def graph(tls: TestTLS) -> Iterator[FakeGraph]:
    with FakeGraph(tls, page_size=2) as fake:
        fake.identity.apps[CLIENT_ID] = App(CLIENT_ID, secret=SECRET)
        fake.subscriptions.validate_urls = False  # no API listens in these tests
        yield fake


@dataclass
class Tenant:
    """A worker runtime on the test's store, an organisation, and its connection to the fake Graph."""

    runtime: runtime.Runtime
    organisation_id: int
    connection_id: int

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.runtime.session_factory

    def connection(self) -> Connection:
        with self.factory() as session:
            return session.get_one(Connection, self.connection_id)


@pytest.fixture
def tenant(engine: Engine, graph: FakeGraph, tls: TestTLS, tmp_path: Path) -> Tenant:
    factory = make_session_factory(engine)
    box = SecretBox([SecretBox.generate_key()])
    worker_runtime = runtime.Runtime(
        factory,
        FolderMailer(tmp_path),
        "https://deskbridge.example",
        "deskbridge <no-reply@deskbridge.test>",
        secret_box=box,
        webhook_client=make_client(allow_private=True),
        queue=QUEUE,
        directory=DirectoryEndpoints(
            microsoft_authority=graph.authority_host, graph_url=graph.graph_url, ca_bundle=str(tls.ca_bundle)
        ),
    )
    runtime.configure(worker_runtime)
    with transaction(factory) as session:
        organisation = organisations.create(session, "Contoso")
        connection, _ = connections.create(
            session,
            box,
            organisation.id,
            ConnectionKind.MICROSOFT,
            "Entra",
            settings={"tenant_id": graph.tenant_id, "client_id": CLIENT_ID},
            credentials={"client_secret": SECRET},
        )
        return Tenant(worker_runtime, organisation.id, connection.id)
