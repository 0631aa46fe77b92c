"""The fake Google on loopback, and connector settings pointed at it with a recording sleep."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from connectors.google import GoogleSettings
from connectors.google.calendar_service import CALENDAR_SCOPE
from tests.conftest import shared_data
from tests.fakes.google import FakeGoogle


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with FakeGoogle() as google:
        yield google


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the connector asked for, instead of sleeping them."""
    return []


@pytest.fixture
def settings(fake: FakeGoogle, sleeps: list[float]) -> GoogleSettings:
    return GoogleSettings(
        service_account_info=fake.service_account_info(),
        admin_email=fake.admin_email,
        base_url=fake.base_url,
        timeout=5.0,
        sleep=sleeps.append,
        allow_private=True,  # the fake's token endpoint is on loopback
    )


def google_sample(name: str) -> Any:
    """A file of ../shared/reference/data/google, parsed (skips when the folder is absent)."""
    path: Path = shared_data("google", name)
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Receiver:
    """A notification URL on loopback that keeps what it was sent."""

    url: str
    received: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    store = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            store.bodies.append(self.rfile.read(length) if length else b"")
            store.received.append(dict(self.headers.items()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    store.url = f"http://127.0.0.1:{server.server_address[1]}/push/google"
    yield store
    server.shutdown()
    server.server_close()


@pytest.fixture
def person(fake: FakeGoogle) -> str:
    """A user of the domain whose primary calendar the service account may read and write.

    The admin has authorised the calendar scope for the service account (domain-wide delegation).
    """
    fake.delegated_scopes.add(CALENDAR_SCOPE)
    fake.add_user("alex@example.com", "Alex", "Müller", notify=False)
    return "alex@example.com"
