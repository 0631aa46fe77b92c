"""A real SMTP server (aiosmtpd), the suite's in-process broker with real Dramatiq workers, and the runtime."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import dramatiq
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_session_factory
from store.secret_box import SecretBox
from tests.conftest import BROKER, QUEUE
from worker import after_commit, runtime
from worker.mailers import Mailer
from worker.mailers.smtp import SMTPMailer
from worker.webhooks.sender import make_client

PUBLIC_BASE_URL = "http://testserver"  # what tests.conftest.make_client answers on
SENDER = "deskbridge <no-reply@deskbridge.test>"
# Waiting on a queue never takes this long; it only turns a hang into a clear failure.
JOIN_TIMEOUT_MS = 60_000


@dataclass
class Delivery:
    """One message the SMTP server accepted, with its envelope."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def accept_link(self) -> str:
        """The invitation link in the plain-text body."""
        body = self.message.get_body(("plain",))
        assert body is not None
        found = re.findall(rf"{re.escape(PUBLIC_BASE_URL)}/invitations/\S+", body.get_content())
        assert len(found) == 1, body.get_content()
        return str(found[0])


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping what it accepts; it refuses the first `refuse` messages with a 550."""

    refuse: int = 0
    refused: int = 0
    deliveries: list[Delivery] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refused < self.refuse:
            self.refused += 1
            return "550 5.7.1 Refused by the test server"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 Message accepted"


@dataclass
class SMTPServer:
    mailbox: Mailbox
    port: int

    def mailer(self, username: str | None = None, password: str | None = None) -> SMTPMailer:
        """A mailer for this server (plain connection: the test server has no certificate)."""
        return SMTPMailer("127.0.0.1", self.port, username, password, starttls=False, timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


StartSMTP = Callable[..., SMTPServer]


@pytest.fixture
def start_smtp() -> Iterator[StartSMTP]:
    """Start real SMTP servers on 127.0.0.1; failing to bind fails the test (no skip)."""
    controllers: list[Controller] = []

    def start(mailbox: Mailbox | None = None, **smtp_options: Any) -> SMTPServer:
        mailbox = mailbox or Mailbox()
        port = _free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **smtp_options)
        controller.start()
        controllers.append(controller)
        return SMTPServer(mailbox, port)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp(start_smtp: StartSMTP) -> SMTPServer:
    """A real SMTP server that accepts everything."""
    return start_smtp()


def password_check(login: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator accepting exactly `login` / `password`."""

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (login.encode(), password.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    return check


@pytest.fixture
def factory(sqlite_engine: Engine) -> sessionmaker[Session]:
    """Sessions whose commits feed the relay, as in production: an invitation enqueues its email."""
    return make_session_factory(sqlite_engine, listeners=[after_commit.on_commit])


@pytest.fixture
def quiet_factory(sqlite_engine: Engine) -> sessionmaker[Session]:
    """Sessions on the same store that enqueue nothing, for tests that send the job themselves."""
    return make_session_factory(sqlite_engine)


Configure = Callable[[Mailer], None]


@pytest.fixture
def use_mailer(factory: sessionmaker[Session]) -> Configure:
    """Configure the worker runtime on the test's store with the given mailer."""

    def configure(mailer: Mailer) -> None:
        runtime.configure(
            runtime.Runtime(
                factory,
                mailer,
                PUBLIC_BASE_URL,
                SENDER,
                secret_box=SecretBox([SecretBox.generate_key()]),
                webhook_client=make_client(allow_private=True),
                queue=QUEUE,
            )
        )

    return configure


@pytest.fixture(autouse=True)
def empty_broker() -> Iterator[None]:
    """No message (or dead letter) of another test leaks into this one."""
    BROKER.flush_all()
    yield
    BROKER.flush_all()


def drain(broker: dramatiq.Broker = BROKER, queue: str = "email") -> None:
    """Run real Dramatiq worker threads until `queue` is empty; re-raises a dead-lettered job's error."""
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        broker.join(queue, timeout=JOIN_TIMEOUT_MS)
        worker.join()
    finally:
        worker.stop()
