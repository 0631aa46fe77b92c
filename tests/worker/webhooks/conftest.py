"""A real HTTP receiver on loopback that verifies Standard Webhooks signatures as a customer's would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from worker.webhooks import limits


@dataclass
class Reply:
    """What the receiver answers to one request."""

    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering


@dataclass
class Received:
    """One request as the receiver saw it, and which of its secrets verified the signature."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified_with: list[str]


@dataclass
class Receiver:
    """Answers with `replies` in turn (then the last one again), verifying signatures against `secrets`.

    A request no secret verifies is answered 401, as a receiver following the spec would.
    """

    secrets: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=lambda: [Reply()])
    received: list[Received] = field(default_factory=list)
    port: int = 0
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/hook"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        index = min(len(self.received), len(self.replies) - 1)
        self.received.append(Received(path, headers, body, verified))
        if self.secrets and not verified:
            return Reply(401, b"bad signature")
        return self.replies[index]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = receiver.handle(self.path, headers, body)
            time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


StartReceiver = Callable[..., Receiver]


@pytest.fixture
def start_receiver() -> Iterator[StartReceiver]:
    """Start receivers: `start_receiver(secrets=[...], replies=[...], host="127.0.0.1")`."""
    servers: list[ThreadingHTTPServer] = []

    def start(**options: Any) -> Receiver:
        receiver = Receiver(**options)
        server_class = _Server6 if ":" in receiver.host else _Server
        server = server_class((receiver.host, 0), _handler(receiver))
        receiver.port = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def in_process_limits() -> Iterator[None]:
    """Every test starts (and leaves) with fresh in-process slot counters."""
    limits.configure_limits(None)
    yield
    limits.configure_limits(None)


def free_port() -> int:
    """A port nothing listens on (for connection-refused tests)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
