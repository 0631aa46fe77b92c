"""`deskbridge connect wheniwork|kadence|resourceguru`: secrets from the environment, kept encrypted, never
echoed; Resource Guru's authorisation code exchanged with the fake Resource Guru over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from deskbridge.wiring import make_secret_box
from store.models import Connection, ConnectionKind
from store.services import connections
from tests.cli.conftest import failed, ok
from tests.fakes.resourceguru import FakeResourceGuru

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


def test_connect_wheniwork_with_its_office_locations(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("WHENIWORK_KEY", "dev-key")
    monkeypatch.setenv("WHENIWORK_PASSWORD", PASSWORD)
    ok(
        "connect", "wheniwork", "--username", "boss@acme.example",
        "--office-location", "136", "--office-location", " Downtown ", "--office-location", "136",
    )  # fmt: skip
    row, _ = only(factory)
    assert row.settings["office_locations"] == [136, "Downtown"]  # digits are an id; each once
    assert row.credentials_encrypted is not None
    assert PASSWORD not in row.credentials_encrypted


def test_connect_wheniwork_refuses_an_empty_office_location(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("WHENIWORK_KEY", "dev-key")
    monkeypatch.setenv("WHENIWORK_PASSWORD", PASSWORD)
    result = failed("connect", "wheniwork", "--username", "boss@acme.example", "--office-location", "  ")
    assert "office_locations" in result.stderr
    assert PASSWORD not in result.output
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []


def test_connect_wheniwork_needs_its_password(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("WHENIWORK_KEY", "dev-key")
    monkeypatch.delenv("WHENIWORK_PASSWORD", raising=False)
    result = failed("connect", "wheniwork", "--username", "boss@acme.example")
    assert "WHENIWORK_PASSWORD" in result.stderr
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []


def test_connect_kadence_refuses_an_unknown_region(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("KADENCE_CLIENT_SECRET", KADENCE_SECRET)
    result = failed("connect", "kadence", "--client-id", "kid", "--region", "mars")
    assert "region must be eu or us" in result.stderr
    assert KADENCE_SECRET not in result.output
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []


def test_kadence_secrets_are_kept_encrypted(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("KADENCE_CLIENT_SECRET", KADENCE_SECRET)
    ok("connect", "kadence", "--client-id", "kid")
    row, _ = only(factory)
    assert row.credentials_encrypted is not None
    assert KADENCE_SECRET not in row.credentials_encrypted
    assert row.settings["region"] == "eu"


# --- Resource Guru: the authorisation code exchanged with the fake, as an admin would -----------------


@pytest.fixture
def guru() -> Iterator[FakeResourceGuru]:
    with FakeResourceGuru() as fake:
        yield fake


def _connect_guru(fake: FakeResourceGuru, *extra: str, account: str | None = None) -> list[str]:
    return [
        "connect", "resourceguru", "--account", account if account is not None else fake.account,
        "--client-id", fake.client_id, "--redirect-uri", fake.redirect_uri, "--api-url", fake.base_url, *extra,
    ]  # fmt: skip


def test_connect_resourceguru_exchanges_the_code_and_keeps_the_pair_encrypted(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, guru: FakeResourceGuru
) -> None:
    ok("org", "create", "Acme")
    code = guru.issue_code()
    monkeypatch.setenv("RESOURCEGURU_CLIENT_SECRET", guru.client_secret)
    monkeypatch.setenv("RESOURCEGURU_CODE", code)
    monkeypatch.setenv("RG_HOOKS", "hook-secret-0123")
    result = ok(*_connect_guru(guru, "--webhook-secret-env", "RG_HOOKS"))

    (exchange,) = guru.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert (exchange["code"], exchange["redirect_uri"]) == (code, guru.redirect_uri)
    row, credentials = only(factory)
    assert (row.kind, row.settings["account"]) == (ConnectionKind.RESOURCEGURU, guru.account)
    assert f"deskbridge sync {row.id}" in result.stdout
    secrets = [guru.client_secret, code, "hook-secret-0123", credentials["access_token"], credentials["refresh_token"]]
    for secret in secrets:
        assert isinstance(secret, str)
        assert secret not in result.output
        assert secret not in (row.credentials_encrypted or "")
    assert credentials["webhook_secret"] == "hook-secret-0123"
    assert datetime.fromisoformat(str(credentials["expires_at"])) > datetime.now(UTC) + timedelta(days=6)
    # The pair kept is the one Resource Guru issued: its API takes the access token.
    answer = httpx.get(
        f"{guru.base_url}/v1/{guru.account}/resources",
        headers={"Authorization": f"Bearer {credentials['access_token']}"},
    )
    assert answer.status_code == 200, answer.text


def test_a_refused_code_is_said_and_nothing_kept(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, guru: FakeResourceGuru
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("RESOURCEGURU_CLIENT_SECRET", guru.client_secret)
    monkeypatch.setenv("RESOURCEGURU_CODE", "not-a-code-0123")
    result = failed(*_connect_guru(guru))
    assert "invalid_grant" in result.stderr
    assert "connect again" in result.stderr
    assert "not-a-code-0123" not in result.output
    assert guru.client_secret not in result.output
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []


def test_a_wrong_client_secret_is_said_and_nothing_kept(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, guru: FakeResourceGuru
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("RESOURCEGURU_CLIENT_SECRET", "wrong-secret-0123")
    monkeypatch.setenv("RESOURCEGURU_CODE", guru.issue_code())
    result = failed(*_connect_guru(guru))
    assert "invalid_client" in result.stderr
    assert "wrong-secret-0123" not in result.output
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []


def test_resource_guru_unreachable_is_said_and_nothing_kept(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RESOURCEGURU_CLIENT_SECRET", "rg-secret")
    monkeypatch.setenv("RESOURCEGURU_CODE", "code-0123")
    args = [
        "connect",
        "resourceguru",
        "--account",
        "acme",
        "--client-id",
        "rg",
        "--redirect-uri",
        "http://localhost/cb",
    ]
    result = failed(*args, "--api-url", f"http://127.0.0.1:{port}")
    assert "unreachable" in result.stderr
    assert "code-0123" not in result.output
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []


def test_bad_input_is_refused_before_the_code_is_spent(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, guru: FakeResourceGuru
) -> None:
    monkeypatch.setenv("RESOURCEGURU_CLIENT_SECRET", guru.client_secret)
    monkeypatch.setenv("RESOURCEGURU_CODE", guru.issue_code())
    result = failed(*_connect_guru(guru))  # no organisation yet
    assert "no organisation" in result.stderr
    ok("org", "create", "Acme")
    result = failed(*_connect_guru(guru, account=" "))
    assert "needs 'account'" in result.stderr
    result = failed(*_connect_guru(guru, "--webhook-secret-env", "NOT_SET_ANYWHERE"))
    assert "NOT_SET_ANYWHERE" in result.stderr
    assert guru.token_requests == []  # the code is still good
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []
    ok(*_connect_guru(guru))
