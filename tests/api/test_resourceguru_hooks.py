"""`POST /hooks/resourceguru/{connection_id}`: signed deliveries kept once and queued; anything else refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.push.kept_secrets import KEEP_SECONDS, RECHECK_SECONDS, Secrets
from connectors.resourceguru import SIGNATURE_HEADER, sign
from store.db import transaction
from store.models import Connection, ConnectionKind, PeerEnvelope
from store.secret_box import SecretBox
from store.services import connections, organisations, peer_envelopes
from tests.conftest import RecordedJobs, make_client

SECRET = "hook-secret"
CREDENTIALS = {"client_id": "c", "client_secret": "s", "access_token": "a", "refresh_token": "r"}


@pytest.fixture
def jobs() -> RecordedJobs:
    """What the route asked of the worker."""
    return RecordedJobs()


def queued(jobs: RecordedJobs) -> list[object]:
    """The connections whose kept deliveries the route asked the worker to apply."""
    return [connection_id for (connection_id,) in jobs.of("apply_peer_deliveries")]


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([SecretBox.generate_key()])


@pytest.fixture
def api(api_factory: sessionmaker[Session], box: SecretBox, jobs: RecordedJobs) -> TestClient:
    return make_client(api_factory, secret_box=box, jobs=jobs)


def _connection(factory: sessionmaker[Session], box: SecretBox, **credentials: str) -> int:
    with transaction(factory) as session:
        organisation = organisations.create(session, "Contoso")
        connection, _ = connections.create(
            session,
            box,
            organisation.id,
            ConnectionKind.RESOURCEGURU,
            "Resource Guru",
            settings={"account": "example-corp"},
            credentials={**CREDENTIALS, **credentials},
        )
        return connection.id


def _body(envelope_id: int = 1) -> bytes:
    return json.dumps({"id": envelope_id, "timestamp": 1, "payload": {"action": "create", "type": "project"}}).encode()


def _post(api: TestClient, connection_id: int, body: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return int(api.post(f"/hooks/resourceguru/{connection_id}", content=body, headers=headers).status_code)


def _kept(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(PeerEnvelope)) or 0


def test_a_genuine_delivery_is_kept_and_queued_once(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, jobs: RecordedJobs
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    body = _body()
    assert _post(api, connection_id, body, sign(SECRET, body)) == 202
    assert _post(api, connection_id, body, sign(SECRET, body)) == 202  # a replay: acknowledged, nothing more
    assert _kept(api_factory) == 1
    assert queued(jobs) == [connection_id]


@pytest.mark.parametrize(
    "signature",
    [None, "", "nothex", sign("not-the-secret", _body()), sign(SECRET, _body(2)), sign(SECRET, _body()).upper() + "0"],
)
def test_anything_but_the_signature_is_refused_and_nothing_kept(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, jobs: RecordedJobs, signature: str | None
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    assert _post(api, connection_id, _body(), signature) == 401
    assert _kept(api_factory) == 0
    assert queued(jobs) == []


def test_a_connection_without_a_secret_or_unknown_refuses(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, jobs: RecordedJobs
) -> None:
    connection_id = _connection(api_factory, box)
    body = _body()
    assert _post(api, connection_id, body, sign("", body)) == 401
    assert _post(api, connection_id + 1, body, sign(SECRET, body)) == 401
    assert _kept(api_factory) == 0


def test_a_signed_body_without_an_envelope_id_is_refused(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, jobs: RecordedJobs
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    for body in (b"not json", b'{"id": "1"}', b"[]", b'{"id": 0}'):
        assert _post(api, connection_id, body, sign(SECRET, body)) == 400
    assert _kept(api_factory) == 0
    assert queued(jobs) == []


def test_a_connection_deleted_while_its_secret_is_kept_refuses(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, jobs: RecordedJobs
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    assert _post(api, connection_id, _body(1), sign(SECRET, _body(1))) == 202  # the secret is kept now
    with transaction(api_factory) as session:
        connections.delete(session, session.get_one(Connection, connection_id))
    assert _post(api, connection_id, _body(2), sign(SECRET, _body(2))) == 401
    assert _kept(api_factory) == 0  # the first went with its connection; the second was never kept
    assert queued(jobs)[1:] == []


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _reader(factory: sessionmaker[Session], box: SecretBox, reads: list[int]) -> Callable[[int], str | None]:
    def read(connection_id: int) -> str | None:
        reads.append(connection_id)
        with transaction(factory) as session:
            return peer_envelopes.webhook_secret(session, box, connection_id)

    return read


def _set_secret(factory: sessionmaker[Session], box: SecretBox, connection_id: int, secret: str) -> None:
    with transaction(factory) as session:
        connection = session.get_one(Connection, connection_id)
        connections.update_connection(session, box, connection, credentials={**CREDENTIALS, "webhook_secret": secret})


def test_a_changed_secret_is_read_again_when_a_signature_fails(
    api_factory: sessionmaker[Session], box: SecretBox
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    clock, reads = Clock(), list[int]()
    known = Secrets(_reader(api_factory, box, reads), clock)
    body = _body()
    assert asyncio.run(known.check(connection_id, body, sign(SECRET, body)))
    assert asyncio.run(known.check(connection_id, body, sign(SECRET, body)))
    assert reads == [connection_id]  # kept: one store read for both
    _set_secret(api_factory, box, connection_id, "rotated")
    # Within RECHECK_SECONDS of the read, a failing signature does not read again (a forged flood
    # costs no store reads); after it, it does, and the new secret is taken.
    assert not asyncio.run(known.check(connection_id, body, sign("rotated", body)))
    assert reads == [connection_id]
    clock.now += RECHECK_SECONDS + 1
    assert asyncio.run(known.check(connection_id, body, sign("rotated", body)))
    assert not asyncio.run(known.check(connection_id, body, sign(SECRET, body)))
    assert reads == [connection_id] * 2


def test_a_kept_secret_is_read_again_after_a_while(api_factory: sessionmaker[Session], box: SecretBox) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    clock, reads = Clock(), list[int]()
    known = Secrets(_reader(api_factory, box, reads), clock)
    body = _body()
    assert asyncio.run(known.check(connection_id, body, sign(SECRET, body)))
    _set_secret(api_factory, box, connection_id, "rotated")
    assert asyncio.run(known.check(connection_id, body, sign(SECRET, body)))  # the old one, for a while
    clock.now += KEEP_SECONDS + 1
    assert not asyncio.run(known.check(connection_id, body, sign(SECRET, body)))  # no longer
    assert asyncio.run(known.check(connection_id, body, sign("rotated", body)))
    assert not asyncio.run(known.check(connection_id + 1, body, sign(SECRET, body)))  # unknown: kept as none
    assert reads == [connection_id, connection_id, connection_id + 1]
