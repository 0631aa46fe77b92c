"""The fake Kadence on loopback, and the connector built on real httpx against it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from connectors.kadence import ClientSecret, Kadence, KadenceAuth, KadenceClient
from connectors.records import Window
from tests.fakes.kadence import FakeKadence

# A week in March; bookings in tests fall inside it unless they say otherwise.
WINDOW = Window(datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC))


@dataclass
class Sleeps:
    """An injected sleep: records what it was asked to wait, waits nothing."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Clock:
    """An injected monotonic clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeKadence]:
    with FakeKadence() as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def make_reader(
    fake: FakeKadence,
    http: httpx.Client,
    sleeps: Sleeps,
    clock: Clock | None = None,
    *,
    secret: str | None = None,
    page_size: int = 2,
) -> Kadence:
    """A reader of the fake with small pages, so a handful of records spans several."""
    auth = KadenceAuth(
        fake.client_id, ClientSecret(secret or fake.secret), token_url=fake.token_url, http=http, clock=clock or Clock()
    )
    client = KadenceClient(auth, api_url=fake.base_url, http=http, sleep=sleeps, backoff=0.5)
    return Kadence(client, page_size=page_size, now=lambda: datetime(2024, 3, 1, 12, tzinfo=UTC))


@pytest.fixture
def reader(fake: FakeKadence, http: httpx.Client, sleeps: Sleeps, clock: Clock) -> Kadence:
    return make_reader(fake, http, sleeps, clock)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in March 2024, UTC."""
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Office:
    """A building with two desks and a room, and two people."""

    building: str
    desk1: str
    desk2: str
    room: str
    ada: str
    bob: str


@pytest.fixture
def office(fake: FakeKadence) -> Office:
    building = fake.add_building("London Office", "Europe/London")
    return Office(
        building=building,
        desk1=fake.add_space("Desk 01", building=building, floor="Floor 1"),
        desk2=fake.add_space("Desk 02", building=building, floor="Floor 2"),
        room=fake.add_space("Room 1", building=building, type="room"),
        ada=fake.add_user("ada@example.com", "Ada", "Lovelace"),
        bob=fake.add_user("bob@example.com", "Bob", "Babbage"),
    )
