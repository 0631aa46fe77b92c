"""What actors need from the composition root: the store, the outside senders and the queue.

Actors' bodies are module-level functions (Dramatiq's model), so their dependencies are set once per
process by `configure` (see deskbridge.wiring) and read with `current()`. `queue` is the actors bound
to this process's broker (worker/queue.py): every job a job asks for is sent through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from sqlalchemy.orm import Session, sessionmaker

from store.secret_box import SecretBox
from sync.directory.readers import DirectoryEndpoints
from worker.mailers import Mailer
from worker.queue import Queue
from worker.webhooks.schedule import DEFAULT_DELAYS


@dataclass(frozen=True)
class Runtime:
    session_factory: sessionmaker[Session]
    mailer: Mailer
    public_base_url: str
    mail_from: str
    secret_box: SecretBox
    webhook_client: httpx.Client
    queue: Queue
    retry_delays: tuple[float, ...] = DEFAULT_DELAYS
    directory: DirectoryEndpoints = field(default_factory=DirectoryEndpoints)
    directory_sync_seconds: float = 900.0  # how often directories are read when nothing is pushed
    calendar_sync_seconds: float = 900.0  # how often calendars and feeds are read when nothing is pushed


_runtime: Runtime | None = None


def configure(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("worker runtime not configured: start through deskbridge (serve, worker)")
    return _runtime
