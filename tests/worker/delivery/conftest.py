"""End-to-end webhook delivery at its real boundaries.

- Receivers: real HTTP servers on loopback that verify every request's Standard Webhooks signature
  with `standardwebhooks.Webhook(secret).verify`, as a customer's would, and answer 401 when it fails.
- Redis: a private `redis-server` per test on a free port (never the machine's shared one), so a
  test may stop and restart it.
- The store: a PostgreSQL database per test (several processes share it), or a SQLite file.
- Dramatiq: the actors are declared on a RedisBroker on the private Redis for the test, and real
  `dramatiq.Worker` threads (or `dramatiq` processes) run them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from store.columns import utcnow
from store.db import make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.models import Base, Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from store.secret_box import SecretBox
from store.services import deliveries, desks, organisations, webhook_endpoints
from tests.conftest import QUEUE, unavailable
from tests.conftest import postgres_database as shared_postgres_database
from worker import actors, after_commit, runtime
from worker.mailers.folder import FolderMailer
from worker.queue import Queue
from worker.webhooks import limits
from worker.webhooks.sender import make_client

ROOT = Path(__file__).resolve().parents[3]
# Waits poll until their condition holds; the deadline only turns a hang into a failure.
DEADLINE = 20.0
# The retry schedule compressed: attempt n+1 comes delays[n] seconds after attempt n (8 attempts).
FAST_RETRIES: tuple[float, ...] = (0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2)
REQUEST_TIMEOUT = 5.0


def wait_until(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` until it is true; fail the test naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- receivers -----------------------------------------------------------------------------------


@dataclass
class Reply:
    """What a receiver answers to one request."""

    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    hold: threading.Event | None = None  # answer only once this is set (a hanging endpoint)


@dataclass(frozen=True)
class Request:
    """One request as a receiver saw it."""

    at: float  # time.monotonic() when it arrived
    headers: dict[str, str]
    body: bytes
    verified: bool  # the Standard Webhooks signature checked out with the endpoint's secret
    status: int  # what the receiver answered (or meant to: a held request may never be answered)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def events(self) -> list[dict[str, Any]]:
        """The events in the body: one object (format "event") or a list of them (format "array")."""
        document = json.loads(self.body)
        return document if isinstance(document, list) else [document]


class Receiver:
    """An HTTP server on 127.0.0.1 answering `replies` in turn, then `then` to every later request.

    It verifies each request with the secret given to `expect` (waiting for it if a request comes
    first); a request that does not verify is answered 401 whatever the script says.
    """

    def __init__(self, replies: Sequence[Reply] = (), then: Reply | None = None, port: int = 0) -> None:
        self.replies = list(replies)
        self.then = then or Reply()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._secret: str | None = None
        self._ready = threading.Event()
        self._server = _Server(("127.0.0.1", port), _handler(self))
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def expect(self, secret: str) -> None:
        """Verify requests with `secret` (the endpoint's, as shown once at creation)."""
        self._secret = secret
        self._ready.set()

    def handle(self, headers: dict[str, str], body: bytes) -> Reply:
        at = time.monotonic()
        verified = False
        if self._ready.wait(DEADLINE) and self._secret is not None:
            try:
                Webhook(self._secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self._lock:
            index = len(self.requests)
            reply = self.replies[index] if index < len(self.replies) else self.then
            if not verified:
                reply = Reply(401, b"bad signature")
            self.requests.append(Request(at, headers, body, verified, reply.status))
        return reply

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def events(self, *, answered: int | None = 200) -> list[dict[str, Any]]:
        """The events of the requests answered `answered` (None: of every request), in arrival order."""
        return [
            event for request in self.snapshot() if answered in (None, request.status) for event in request.events()
        ]

    def types(self) -> list[str]:
        """The types of the events it accepted, in arrival order."""
        return [event["type"] for event in self.events()]

    def release(self) -> None:
        """Let every held request answer."""
        for reply in [*self.replies, self.then]:
            if reply.hold is not None:
                reply.hold.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            reply = receiver.handle({name.lower(): value for name, value in self.headers.items()}, body)
            if reply.hold is not None:
                reply.hold.wait(120)
            time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the sender gave up (a timeout, or a killed worker)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class Receivers:
    """Starts receivers for a test and closes them at its end."""

    def __init__(self) -> None:
        self.started: list[Receiver] = []

    def start(self, replies: Sequence[Reply] = (), then: Reply | None = None, port: int = 0) -> Receiver:
        receiver = Receiver(replies, then, port)
        self.started.append(receiver)
        return receiver

    def release_all(self) -> None:
        for receiver in self.started:
            receiver.release()

    def close_all(self) -> None:
        for receiver in self.started:
            receiver.close()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    started = Receivers()
    yield started
    started.close_all()


# --- a private Redis -------------------------------------------------------------------------------


class RedisServer:
    """A `redis-server` of the test's own, without persistence: a restart comes back empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("Redis", "redis-server is not installed")
            return
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no", "--dir", str(self.folder)]
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)
        try:
            wait_until(lambda: self._answers(client), f"redis-server on port {self.port} to answer", 10)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    server.stop()


# --- a store of the test's own -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this run's own (dropped at its end); its URL."""
    with shared_postgres_database(f"deskbridge_delivery_{os.getpid()}") as engine:
        upgrade(engine)
        yield engine.url.render_as_string(hide_password=False)


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The run's PostgreSQL database, emptied for this test (worker processes of a test may use it too)."""
    engine = make_engine(postgres_database)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_database


# --- the pipeline ----------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """The store, the broker and the worker runtime of one test, configured as the wiring does."""

    engine: Engine
    factory: sessionmaker[Session]  # commits feed the relay (after_commit.on_commit), as in production
    quiet: sessionmaker[Session]  # commits that enqueue nothing: the on_commit relay skipped
    broker: dramatiq.Broker
    queue: Queue  # every actor, bound to `broker`
    secret_key: str  # the SecretBox key endpoint secrets are encrypted with (DESKBRIDGE_SECRET_KEY)
    mail_dir: Path
    workers: list[dramatiq.Worker] = field(default_factory=list)
    secrets: dict[int, str] = field(default_factory=dict)  # signing secret by endpoint id

    @property
    def box(self) -> SecretBox:
        return SecretBox([self.secret_key])

    def configure(
        self,
        *,
        retry_delays: tuple[float, ...] = FAST_RETRIES,
        allow_private: bool = True,
        timeout: float = REQUEST_TIMEOUT,
    ) -> runtime.Runtime:
        """(Re)configure the worker runtime: the retry schedule, the SSRF guard, the request timeout."""
        client = make_client(allow_private=allow_private)
        client.timeout = timeout  # the setter makes an httpx.Timeout of it
        configured = runtime.Runtime(
            session_factory=self.factory,
            mailer=FolderMailer(self.mail_dir),
            public_base_url="http://testserver",
            mail_from="deskbridge <no-reply@deskbridge.test>",
            secret_box=self.box,
            webhook_client=client,
            queue=self.queue,
            retry_delays=retry_delays,
        )
        runtime.configure(configured)
        return configured

    def start_worker(self, threads: int = 8) -> dramatiq.Worker:
        """Real Dramatiq worker threads on the test's broker (stopped at the end of the test)."""
        worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
        worker.start()
        self.workers.append(worker)
        return worker

    def queued(self, queue_name: str) -> int:
        """Messages of a queue in Redis: waiting, delayed or being worked on."""
        assert isinstance(self.broker, RedisBroker)
        return int(self.broker.do_qsize(queue_name))

    # --- changes, made as the API would make them ---

    def organisation(self, name: str = "Acme") -> int:
        with transaction(self.factory) as session:
            return organisations.create(session, name).id

    def endpoint(
        self,
        organisation_id: int,
        receiver: Receiver | None = None,
        *,
        url: str | None = None,
        event_types: Sequence[str] = ("desk.*",),
        payload_format: str = "event",
        paused: bool = False,
        kind: str = "webhook",
    ) -> int:
        """A webhook endpoint to `url` (default: the receiver's), whose receiver is told the signing secret."""
        target = url or (receiver.url if receiver is not None else None)
        assert target is not None, "an endpoint needs a receiver or a URL"
        with transaction(self.factory) as session:
            endpoint, secret = webhook_endpoints.create_endpoint(
                session, organisation_id, target, box=self.box, event_types=event_types,
                payload_format=payload_format, paused=paused, kind=kind,
            )  # fmt: skip
            endpoint_id = endpoint.id
        self.secrets[endpoint_id] = secret
        if receiver is not None:
            receiver.expect(secret)
        return endpoint_id

    def desk(self, organisation_id: int, label: str, *, factory: sessionmaker[Session] | None = None) -> str:
        """Create a desk (a `desk.created` event); returns the event's id."""
        with transaction(factory or self.factory) as session:
            desks.create(session, organisation_id, label)
        return self.events(organisation_id, "desk.created")[-1].id

    def time_passes(self, delivery_id: int) -> None:
        """The delivery's next attempt (a long retry, or the end of a lease) comes due: it is now past."""
        with transaction(self.quiet) as session:
            due = utcnow() - timedelta(seconds=1)
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(next_attempt_at=due))

    # --- what the store says ---

    def events(self, organisation_id: int, event_type: str | None = None) -> list[OutboxEvent]:
        query = select(OutboxEvent).where(OutboxEvent.organisation_id == organisation_id).order_by(OutboxEvent.seq)
        if event_type is not None:
            query = query.where(OutboxEvent.type == event_type)
        with self.factory() as session:
            return list(session.scalars(query))

    def unrelayed(self) -> int:
        with self.factory() as session:
            return len(session.scalars(select(OutboxEvent.id).where(OutboxEvent.relayed_at.is_(None))).all())

    def deliveries(self, endpoint_id: int) -> list[Delivery]:
        """The endpoint's deliveries in event order."""
        with self.factory() as session:
            query = select(Delivery).where(Delivery.endpoint_id == endpoint_id).order_by(Delivery.event_seq)
            return list(session.scalars(query))

    def attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        with self.factory() as session:
            return deliveries.attempts_of(session, [delivery_id])[delivery_id]

    def endpoint_row(self, endpoint_id: int) -> WebhookEndpoint:
        with self.factory() as session:
            return session.get_one(WebhookEndpoint, endpoint_id)

    def statuses(self, endpoint_id: int) -> list[str]:
        return [str(delivery.status) for delivery in self.deliveries(endpoint_id)]


MakePipeline = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline(request: pytest.FixtureRequest, receivers: Receivers, tmp_path: Path) -> MakePipeline:
    """`make_pipeline(store="postgres"|"sqlite", broker="redis"|"stub")`: at most one a test.

    "redis": the actors are bound to a RedisBroker on a private Redis (the `redis_server`
    fixture) for the test, and webhook slots are counted there, as in production; "stub": the
    suite's in-process broker, as in the embedded mode.
    """
    made: list[Pipeline] = []

    def make(store: str = "postgres", broker: str = "redis") -> Pipeline:
        assert not made, "one pipeline a test"
        if store == "postgres":
            engine = make_engine(request.getfixturevalue("postgres_url"))
        else:
            engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
            upgrade(engine)
        bound = QUEUE
        if broker == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            bound = actors.bind(RedisBroker(url=server.url))  # type: ignore[no-untyped-call]
            limits.configure_limits(server.url)
        else:
            limits.configure_limits(None)
        pipeline = Pipeline(
            engine=engine,
            factory=make_session_factory(engine, listeners=[after_commit.on_commit]),
            quiet=make_session_factory(engine),
            broker=bound.broker,
            queue=bound,
            secret_key=SecretBox.generate_key(),
            mail_dir=tmp_path / "mail",
        )
        pipeline.configure()
        made.append(pipeline)

        def tear_down() -> None:  # before the store and Redis go (finalizers run last in, first out)
            receivers.release_all()  # a worker thread held by a receiver finishes its request
            for worker in pipeline.workers:
                worker.stop(timeout=30_000)
            runtime.current().webhook_client.close()
            if bound is not QUEUE:
                bound.broker.close()
            limits.configure_limits(None)
            engine.dispose()

        request.node.addfinalizer(tear_down)
        return pipeline

    return make


@pytest.fixture
def pipeline(make_pipeline: MakePipeline) -> Pipeline:
    """PostgreSQL and Redis, as in production."""
    return make_pipeline()


def delivered(pipeline: Pipeline, endpoint_id: int, count: int) -> Callable[[], bool]:
    """Whether the endpoint has `count` deliveries, every one succeeded."""
    return lambda: pipeline.statuses(endpoint_id) == ["succeeded"] * count
