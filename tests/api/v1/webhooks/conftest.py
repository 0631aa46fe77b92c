"""Fixtures of the webhook and REST hook tests: the API with the real backlog queue, the worker's side
(runtime, relay, attempts, Dramatiq workers) on the same store, and real receivers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.secret_box import SecretBox
from tests.conftest import BROKER, QUEUE, Org, auth, make_client
from tests.worker.conftest import drain
from tests.worker.webhooks.conftest import start_receiver  # noqa: F401 - the receivers fixture, shared
from worker import runtime
from worker.api_jobs import QueuedJobs
from worker.mailers.folder import FolderMailer
from worker.webhooks import delivery
from worker.webhooks.sender import make_client as make_webhook_client

PUBLIC_URL = "https://1.1.1.1/hook"  # a public address literal: passes the SSRF check without DNS


@dataclass
class Pipeline:
    """The worker's side, on the API's store: relay and attempts on demand, real workers for backlogs."""

    factory: sessionmaker[Session]

    def deliver(self) -> None:
        """Relay the waiting events, then attempt every due delivery and its short retries until none is left."""
        queue: list[list[int]] = []

        def enqueue(delivery_ids: list[int], _delay_ms: int) -> None:
            queue.append(delivery_ids)

        delivery.relay(runtime.current(), enqueue)
        while queue:
            delivery.attempt_batch(runtime.current(), queue.pop(0), enqueue)

    def drain(self) -> None:
        """Run the jobs the API queued (resumed or replayed backlogs) with real Dramatiq workers."""
        drain(BROKER, "webhooks")


@pytest.fixture
def box() -> SecretBox:
    """The key ring of the API and the worker alike."""
    return SecretBox([SecretBox.generate_key()])


@pytest.fixture
def pipeline(api_factory: sessionmaker[Session], box: SecretBox, tmp_path: Path) -> Iterator[Pipeline]:
    """The worker runtime on the test's store: two attempts a delivery, the retry due at once."""
    BROKER.flush_all()
    with make_webhook_client(allow_private=True) as webhook_client:
        runtime.configure(
            runtime.Runtime(
                session_factory=api_factory,
                mailer=FolderMailer(tmp_path / "mail"),
                public_base_url="http://testserver",
                mail_from="deskbridge <no-reply@deskbridge.test>",
                secret_box=box,
                webhook_client=webhook_client,
                queue=QUEUE,
                retry_delays=(0.0, 0.0),
            )
        )
        yield Pipeline(api_factory)
    BROKER.flush_all()


@pytest.fixture
def api(api_factory: sessionmaker[Session], box: SecretBox, pipeline: Pipeline) -> TestClient:
    """The API on the pipeline's store and key ring; resumes and replays go to the real queue."""
    return make_client(api_factory, secret_box=box, jobs=QueuedJobs(runtime.current()))


def create(client: TestClient, org: Org, url: str = PUBLIC_URL, **fields: Any) -> dict[str, Any]:
    """Create an endpoint as the organisation's admin; the 201 body."""
    response = client.post("/v1/webhooks", json={"url": url, **fields}, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def make_desk(client: TestClient, org: Org, label: str) -> None:
    """A change that records `desk.created`."""
    assert client.post("/v1/desks", json={"label": label}, headers=auth(org.admin_token)).status_code == 201
