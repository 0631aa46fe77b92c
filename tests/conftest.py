"""Shared fixtures: the store on SQLite and PostgreSQL, the API, and service availability.

A test that needs PostgreSQL, Redis or SMTP skips with the reason on a laptop without it, and
fails under CI=true, where every service must be there.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.context import ApiContext
from api.jobs import StubJobs
from api.ratelimit import MemoryCounter
from store.db import make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.models import Base, Member, Organisation, OutboxEvent, Role
from store.secret_box import SecretBox
from store.services import members, organisations, tokens
from worker import actors, runtime
from worker import broker as brokers
from worker.api_jobs import QueuedJobs
from worker.mailers.folder import FolderMailer
from worker.webhooks.sender import make_client as make_webhook_client

POSTGRES_URL = os.environ.get("DESKBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DESKBRIDGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "reference" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"

# The suite's in-process broker, every actor bound to it (a test may bind them to a Redis broker of its own).
BROKER = brokers.make_broker(None)
QUEUE = actors.bind(BROKER)


def unavailable(service: str, reason: str) -> None:
    """Skip (laptop) or fail (CI) a test whose service cannot be reached."""
    message = f"{service} is not reachable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services must run)")
    pytest.skip(message)


def shared_data(*parts: str) -> Path:
    """A file of ../shared/reference/data, or skip when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not present: {path}")
    return path


@contextmanager
def postgres_database(name: str) -> Iterator[Engine]:
    """A new, empty database on the PostgreSQL server, dropped afterwards (or a skip/fail without one).

    Each run makes its own, so that runs side by side (or a benchmark) never see each other's rows.
    """
    server = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:
        server.dispose()
        unavailable("PostgreSQL", str(error).splitlines()[0])
    engine = make_engine(server.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        server.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """A migrated database of this run's own on the PostgreSQL server."""
    with postgres_database(f"deskbridge_test_{os.getpid()}") as engine:
        upgrade(engine)
        yield engine


def _truncate(engine: Engine) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        pg: Engine = request.getfixturevalue("postgres_engine")
        _truncate(pg)
        yield pg
        return
    lite = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(lite)
    yield lite
    lite.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store, for tests whose subject is not the database."""
    lite = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(lite)
    yield lite
    lite.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def events(factory: sessionmaker[Session], organisation_id: int) -> list[OutboxEvent]:
    """The organisation's outbox, in order."""
    with factory() as session:
        return list(
            session.query(OutboxEvent).filter_by(organisation_id=organisation_id).order_by(OutboxEvent.seq).all()
        )


@dataclass
class Org:
    """An organisation with the API on, an admin and a member, each holding a token."""

    organisation: Organisation
    admin: Member
    admin_token: str
    member: Member
    member_token: str


def make_org(factory: sessionmaker[Session], name: str = "Acme", *, api_enabled: bool = True) -> Org:
    with transaction(factory) as session:
        organisation = organisations.create(session, name, timezone="Europe/London")
        organisations.update_settings(session, organisation, api_enabled=api_enabled)
        slug = organisation.slug
        admin = members.add(
            session, organisation.id, f"admin@{slug}.example", role=Role.ADMIN, display_name="Ada", api_access=True
        )
        member = members.add(session, organisation.id, f"will@{slug}.example", display_name="William", api_access=True)
        _, admin_token = tokens.create(session, admin)
        _, member_token = tokens.create(session, member)
    return Org(organisation, admin, admin_token, member, member_token)


class RecordedJobs(StubJobs):
    """The stub `Jobs` port with what tests look at most, by the work asked for."""

    @property
    def syncs(self) -> list[object]:
        """Connections whose directory sync was asked for."""
        return [connection_id for (connection_id,) in self.of("sync_directory")]

    @property
    def channels(self) -> list[tuple[object, ...]]:
        """(connection, recreate) of every directory channel renewal asked for."""
        return self.of("renew_directory_channels")

    @property
    def closed(self) -> list[object]:
        """Connections whose channels were closed."""
        return [connection_id for (connection_id,) in self.of("close_channels")]

    @property
    def calendars(self) -> list[object]:
        """Connections whose calendars were asked to be brought in line."""
        return [connection_id for (connection_id,) in self.of("follow_calendars")]


def api_context(factory: sessionmaker[Session], **changes: Any) -> ApiContext:
    """The API's context as the tests build it, on `factory`'s store: counts kept in the process, a
    fresh key ring, private webhook targets allowed (loopback receivers, as the test settings do) and
    the stub `Jobs` port, which records what is asked (`jobs=` another to look at it, or the worker's
    `QueuedJobs` for the real queue). `changes` replace any of these."""
    made: dict[str, Any] = {
        "session_factory": factory,
        "counter": MemoryCounter(),
        "public_base_url": "http://testserver",
        "jobs": RecordedJobs(),
        "secret_box": SecretBox([SecretBox.generate_key()]),
        "allow_private_webhooks": True,
    }
    return ApiContext(**{**made, **changes})


def sending_jobs(
    factory: sessionmaker[Session], secret_box: SecretBox | None = None, *, allow_private: bool = True
) -> QueuedJobs:
    """The worker's own `Jobs` on `factory`'s store: its jobs go to the suite's broker (nothing runs
    them unless a test drains it), its test sends through the worker's webhook client (loopback
    allowed unless `allow_private` is false)."""
    worker_runtime = runtime.Runtime(
        factory,
        FolderMailer(Path(tempfile.mkdtemp(prefix="deskbridge-mail-"))),
        "http://testserver",
        "deskbridge <no-reply@deskbridge.test>",
        secret_box=secret_box or SecretBox([SecretBox.generate_key()]),
        webhook_client=make_webhook_client(allow_private=allow_private),
        queue=QUEUE,
    )
    return QueuedJobs(worker_runtime)


def make_client(
    factory: sessionmaker[Session], *, rate_limit: int = 1000, max_body: int = 64 * 1024, **changes: Any
) -> TestClient:
    """A test client of the API on `factory`'s store (`api_context`'s, with `changes`)."""
    context = api_context(factory, rate_limit_per_day=rate_limit, max_body_bytes=max_body, **changes)
    return TestClient(create_app(context))


@pytest.fixture
def api_factory(sqlite_engine: Engine) -> sessionmaker[Session]:
    """Sessions on a fresh SQLite store, for API tests."""
    return make_session_factory(sqlite_engine)


@pytest.fixture
def client(api_factory: sessionmaker[Session]) -> TestClient:
    return make_client(api_factory)


@pytest.fixture
def org(api_factory: sessionmaker[Session]) -> Org:
    return make_org(api_factory)


@pytest.fixture
def other_org(api_factory: sessionmaker[Session]) -> Org:
    return make_org(api_factory, "Globex")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable("Redis", str(error))
    client.flushdb()
    yield client
    client.flushdb()


# --- leaving ----------------------------------------------------------------------------------------

_exit_status: int | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave as soon as pytest is done (its summary printed, every plugin unconfigured) without the
    interpreter's own shutdown: a whole run leaves a heap of several GB (thousands of apps, engines
    and fuzzing examples), and CPython 3.11's finalisation ran full collections over it for more than
    ten minutes. The OS reclaims the memory at once; services and child processes are stopped by the
    fixtures that started them."""
    if _exit_status is None or os.environ.get("DESKBRIDGE_TEST_FINALISE") == "1":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
