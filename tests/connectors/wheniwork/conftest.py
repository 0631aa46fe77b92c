"""The fake When I Work on loopback with a small account, and the connector built on real httpx.

The account (America/Chicago, so offsets are -0600 before 9 March 2014 and -0500 after):
locations 136 Downtown and 137 Uptown; users 1 Goldie (manager, both locations, the login),
2 Jennifer (employee, Downtown) and 3 Emmett (supervisor, Uptown, not activated).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from connectors.records import Window
from connectors.wheniwork import WhenIWork, WhenIWorkClient
from tests.fakes.wheniwork import DEVELOPER_KEY, FakeWhenIWork

USERNAME = "goldiewilson@hillvalleycalifornia.gov"
PASSWORD = "Th3m@y0R"
# 3 to 17 March 2014 in UTC: it spans the US switch to daylight saving time (9 March).
WINDOW = Window(datetime(2014, 3, 3, tzinfo=UTC), datetime(2014, 3, 17, tzinfo=UTC))


@dataclass
class Sleeps:
    """An injected sleep: records what it was asked to wait, waits nothing."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeWhenIWork]:
    with FakeWhenIWork() as server:
        server.add_login(USERNAME, PASSWORD, user_id=1)
        server.add_location(136, "Downtown", "9303 Lyon Drive, Hill Valley, CA 12345")
        server.add_location(137, "Uptown")
        server.add_user(1, "Goldie", "Wilson", USERNAME, role=2, locations=(136, 137))
        server.add_user(2, "Jennifer", "Parker", "Jen.Parker@example.com", role=3, locations=(136,))
        server.add_user(3, "Emmett", "Brown", "doc@example.com", role=5, locations=(137,))
        server.users[3]["activated"] = 0
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(fake: FakeWhenIWork, sleeps: Sleeps, **kwargs: object) -> WhenIWorkClient:
    """A client for the fake; keyword arguments replace the defaults (e.g. password, max_attempts)."""
    options: dict[str, object] = {"developer_key": DEVELOPER_KEY, "username": USERNAME, "password": PASSWORD}
    options |= {"base_url": fake.base_url, "sleep": sleeps, "backoff": 0.5, "max_attempts": 4} | kwargs
    return WhenIWorkClient(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeWhenIWork, sleeps: Sleeps) -> Iterator[WhenIWorkClient]:
    made = make_client(fake, sleeps)
    yield made
    made.close()


@pytest.fixture
def reader(client: WhenIWorkClient) -> WhenIWork:
    return WhenIWork(client, now=lambda: datetime(2014, 3, 4, 12, tzinfo=UTC))
