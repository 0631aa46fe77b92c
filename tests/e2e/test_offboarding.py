"""Offboarding end to end: someone is disabled in Entra ID, Graph notifies us, and a moment later
their membership is gone, their future booking cancelled, and subscribers got signed webhooks.

Everything runs at its real boundary: the fake Microsoft identity platform + Graph over TLS (real
msal and httpx), our API served by uvicorn on loopback (Graph's validation handshake and the
notification reach it over HTTP), the in-process broker with real Dramatiq worker threads, and a
loopback receiver verifying Standard Webhooks signatures.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from api.app import create_app
from store.columns import utcnow
from store.db import make_session_factory, transaction
from store.models import Booking, BookingStatus, Connection, ConnectionKind, DirectoryPolicy, MemberStatus, Role
from store.secret_box import SecretBox
from store.services import bookings, connections, desks, members, organisations, webhook_endpoints
from sync.directory.readers import DirectoryEndpoints
from tests.conftest import BROKER, QUEUE, api_context
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import TestTLS, make_tls
from worker import after_commit, channels, runtime
from worker.api_jobs import QueuedJobs
from worker.directory import jobs
from worker.mailers.folder import FolderMailer
from worker.webhooks.sender import make_client

CLIENT_ID = "app-0001"
SECRET = "graph~secret"
DEADLINE = 30.0


def wait_until(condition: Callable[[], object], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Receiver:
    """Collects webhooks whose signature verifies with the endpoint's secret."""

    secret: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    Webhook(receiver.secret).verify(body, dict(self.headers))
                except Exception:
                    self.send_response(401)
                    self.end_headers()
                    return
                payload = json.loads(body)
                receiver.events.extend(payload if isinstance(payload, list) else [payload])
                self.send_response(204)
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def graph(tls: TestTLS) -> Iterator[FakeGraph]:
    with FakeGraph(tls, page_size=2) as fake:
        fake.identity.apps[CLIENT_ID] = App(CLIENT_ID, secret=SECRET)
        fake.directory.add_user("u-alice", "alice@contoso.example", display_name="Alice", mail="alice@contoso.example")
        fake.directory.add_user("u-bob", "bob@contoso.example", display_name="Bob", mail="bob@contoso.example")
        fake.directory.add_user("u-carol", "carol@contoso.example", display_name="Carol", mail="carol@contoso.example")
        yield fake


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


@dataclass
class Stack:
    factory: sessionmaker[Session]
    runtime: runtime.Runtime
    base_url: str


def _serve(app: Any) -> tuple[uvicorn.Server, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
def stack(engine: Engine, graph: FakeGraph, google: FakeGoogle, tls: TestTLS, tmp_path: Path) -> Iterator[Stack]:
    factory = make_session_factory(engine, listeners=[after_commit.on_commit])
    box = SecretBox([SecretBox.generate_key()])
    unserved = runtime.Runtime(
        factory,
        FolderMailer(tmp_path / "mail"),
        "http://placeholder",  # the server's address, once it listens
        "deskbridge <no-reply@deskbridge.test>",
        secret_box=box,
        webhook_client=make_client(allow_private=True),
        queue=QUEUE,
        directory=DirectoryEndpoints(
            microsoft_authority=graph.authority_host,
            graph_url=graph.graph_url,
            google_api_url=google.base_url,
            ca_bundle=str(tls.ca_bundle),
            allow_private=True,  # the fakes are on loopback
        ),
    )
    # The API asks the worker through the real queue, which the worker threads below run.
    app_context = api_context(factory, public_base_url="http://placeholder", secret_box=box, jobs=QueuedJobs(unserved))
    server, base_url = _serve(create_app(app_context))
    worker_runtime = dataclasses.replace(unserved, public_base_url=base_url)
    runtime.configure(worker_runtime)
    BROKER.flush_all()
    worker = dramatiq.Worker(BROKER, worker_threads=4, worker_timeout=50)
    worker.start()
    try:
        yield Stack(factory, worker_runtime, base_url)
    finally:
        worker.stop()
        BROKER.flush_all()
        server.should_exit = True


def test_a_graph_notification_offboards_the_person(stack: Stack, graph: FakeGraph) -> None:
    factory = stack.factory
    receiver = Receiver()
    http = receiver.serve()
    with transaction(factory) as session:
        organisation = organisations.create(session, "Contoso")
        organisations.update_settings(session, organisation, directory_policy=DirectoryPolicy.AUTO_ACCEPT)
        members.add(session, organisation.id, "admin@contoso.example", display_name="Admin", role=Role.ADMIN)
        desk = desks.create(session, organisation.id, "D-1")
        _, secret = webhook_endpoints.create_endpoint(
            session,
            organisation.id,
            f"http://127.0.0.1:{http.server_address[1]}/hooks",
            box=stack.runtime.secret_box,
            event_types=["membership.*", "booking.cancelled"],
        )
        receiver.secret = secret
        connection, _ = connections.create(
            session,
            stack.runtime.secret_box,
            organisation.id,
            ConnectionKind.MICROSOFT,
            "Contoso Entra ID",
            settings={"tenant_id": graph.tenant_id, "client_id": CLIENT_ID},
            credentials={"client_secret": SECRET},
        )
        organisation_id, desk_id, connection_id = organisation.id, desk.id, connection.id
        assert jobs.request_sync(session, connection_id)
    jobs.enqueue_sync(QUEUE, connection_id)

    def synced() -> bool:
        with factory() as session:
            return session.get_one(Connection, connection_id).last_synced_at is not None

    wait_until(synced, "the first sync")
    with transaction(factory) as session:
        alice = members.get_by_email(session, organisation_id, "alice@contoso.example")
        assert alice.status is MemberStatus.ACTIVE
        start = utcnow() + timedelta(days=3)
        booking_id = bookings.create(session, alice, start=start, end=start + timedelta(hours=8), desk_id=desk_id).id

    # Subscriptions: Graph checks our notification URL with the validation handshake first.
    assert channels.ensure(stack.runtime, connection_id) == 2
    subscription = next(item for item in graph.subscriptions.items.values() if item.resource == "users")

    graph.directory.disable_user("u-alice")
    assert graph.subscriptions.notify(subscription.id) == 202

    def cancelled() -> bool:
        with factory() as session:
            return session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED

    wait_until(cancelled, "the booking to be cancelled")
    with factory() as session:
        alice = members.get_by_email(session, organisation_id, "alice@contoso.example")
        assert alice.status is MemberStatus.REMOVED
        assert session.scalar(select(Booking.id).where(Booking.id == booking_id)) == booking_id  # history kept
    wait_until(lambda: "booking.cancelled" in receiver.types(), "the booking.cancelled webhook")
    wait_until(lambda: "membership.removed" in receiver.types(), "the membership.removed webhook")
    removed = next(event for event in receiver.events if event["type"] == "membership.removed")
    assert removed["data"]["email"] == "alice@contoso.example"
    assert removed["data"]["reason"] == "directory_offboarded"
    http.shutdown()


def test_a_google_channel_notification_offboards_the_person(stack: Stack, google: FakeGoogle) -> None:
    factory = stack.factory
    ada = google.add_user("ada@acme.example", "Ada", "Lovelace")
    google.add_user("bob@acme.example", "Bob")
    with transaction(factory) as session:
        organisation = organisations.create(session, "Acme")
        members.add(session, organisation.id, "admin@acme.example", role=Role.ADMIN)
        connection, _ = connections.create(
            session,
            stack.runtime.secret_box,
            organisation.id,
            ConnectionKind.GOOGLE,
            "Acme Workspace",
            settings={"admin_email": google.admin_email},
            credentials={"service_account_key": google.service_account_info()},
        )
        organisation_id, connection_id = organisation.id, connection.id
        assert jobs.request_sync(session, connection_id)
    jobs.enqueue_sync(QUEUE, connection_id)

    def status(email: str) -> MemberStatus | None:
        with factory() as session:
            member = members.find_by_email(session, organisation_id, email)
            return member.status if member else None

    wait_until(lambda: status("ada@acme.example") is MemberStatus.INVITED, "the first sync")

    opened = channels.ensure(stack.runtime, connection_id)
    assert opened == len(google.channels) > 0
    google.wait_for_deliveries(opened)  # each channel's opening `sync` message reached our API
    google.suspend_user(ada)

    wait_until(lambda: status("ada@acme.example") is MemberStatus.REMOVED, "the suspended person to be removed")
    assert status("bob@acme.example") is MemberStatus.INVITED

    channels.close_connection(stack.runtime, connection_id)
    assert google.channels == {}
