"""`POST /hooks/resourceguru/{connection_id}`: signed deliveries kept once and queued; anything else refused."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.resourceguru import SIGNATURE_HEADER, sign
from store.db import transaction
from store.models import ConnectionKind, PeerEnvelope
from store.secret_box import SecretBox
from store.services import connections, organisations
from tests.conftest import make_client
from worker.peers import hooks

SECRET = "hook-secret"
CREDENTIALS = {"client_id": "c", "client_secret": "s", "access_token": "a", "refresh_token": "r"}


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    found: list[int] = []
    monkeypatch.setattr(hooks, "enqueue", found.append)
    return found


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([SecretBox.generate_key()])


@pytest.fixture
def api(api_factory: sessionmaker[Session], box: SecretBox) -> TestClient:
    return make_client(api_factory, secret_box=box)


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
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, queued: list[int]
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    body = _body()
    assert _post(api, connection_id, body, sign(SECRET, body)) == 202
    assert _post(api, connection_id, body, sign(SECRET, body)) == 202  # a replay: acknowledged, nothing more
    assert _kept(api_factory) == 1
    assert len(queued) == 1


@pytest.mark.parametrize(
    "signature",
    [None, "", "nothex", sign("not-the-secret", _body()), sign(SECRET, _body(2)), sign(SECRET, _body()).upper() + "0"],
)
def test_anything_but_the_signature_is_refused_and_nothing_kept(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, queued: list[int], signature: str | None
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    assert _post(api, connection_id, _body(), signature) == 401
    assert _kept(api_factory) == 0
    assert queued == []


def test_a_connection_without_a_secret_or_unknown_refuses(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, queued: list[int]
) -> None:
    connection_id = _connection(api_factory, box)
    body = _body()
    assert _post(api, connection_id, body, sign("", body)) == 401
    assert _post(api, connection_id + 1, body, sign(SECRET, body)) == 401
    assert _kept(api_factory) == 0


def test_a_signed_body_without_an_envelope_id_is_refused(
    api: TestClient, api_factory: sessionmaker[Session], box: SecretBox, queued: list[int]
) -> None:
    connection_id = _connection(api_factory, box, webhook_secret=SECRET)
    for body in (b"not json", b'{"id": "1"}', b"[]", b'{"id": 0}'):
        assert _post(api, connection_id, body, sign(SECRET, body)) == 400
    assert _kept(api_factory) == 0
    assert queued == []
