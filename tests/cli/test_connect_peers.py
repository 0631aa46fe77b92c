"""`deskbridge connect wheniwork|kadence`: secrets from the environment, kept encrypted, never echoed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from deskbridge.wiring import make_secret_box
from store.models import Connection, ConnectionKind
from store.services import connections
from tests.cli.conftest import failed, ok

PASSWORD = "wiw-password-0123"  # a test value searched for in the output
KADENCE_SECRET = "kadence-secret-0123"


def only(factory: sessionmaker[Session]) -> tuple[Connection, dict[str, object]]:
    with factory() as session:
        row = session.scalars(select(Connection)).one()
        return row, connections.credentials(make_secret_box(get_settings()), row)


def test_connect_wheniwork(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("WHENIWORK_KEY", "dev-key")
    monkeypatch.setenv("WHENIWORK_PASSWORD", PASSWORD)
    result = ok("connect", "wheniwork", "--username", "boss@acme.example")
    assert PASSWORD not in result.output
    row, credentials = only(factory)
    assert row.kind is ConnectionKind.WHENIWORK
    assert credentials == {"developer_key": "dev-key", "username": "boss@acme.example", "password": PASSWORD}


def test_connect_kadence(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("KADENCE_CLIENT_SECRET", KADENCE_SECRET)
    result = ok("connect", "kadence", "--client-id", "kid", "--region", "us", "--import-desks")
    assert KADENCE_SECRET not in result.output
    row, credentials = only(factory)
    assert row.settings["region"] == "us"
    assert row.settings["import_desks"] is True
    assert credentials == {"client_id": "kid", "client_secret": KADENCE_SECRET}


def test_a_missing_secret_is_said_and_nothing_made(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    result = failed("connect", "kadence", "--client-id", "kid", "--client-secret-env", "NOT_SET_ANYWHERE")
    assert "NOT_SET_ANYWHERE" in result.output
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []
