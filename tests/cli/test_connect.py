"""`deskbridge connect …` and `deskbridge connections`: secrets read from the environment or files, never echoed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from deskbridge.wiring import make_secret_box
from store.models import Connection, ConnectionKind, OutboxEvent
from store.services import connections
from tests.cli.conftest import count, failed, ok, table_rows

CLIENT_SECRET = "cli-secret-value-0123"  # a test value searched for in the output
KEY = {
    "type": "service_account",
    "client_email": "sync@acme.iam.gserviceaccount.com",
    "client_id": "1234",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ-cli-not-a-real-key\n-----END PRIVATE KEY-----\n",
    "token_uri": "https://oauth2.googleapis.com/token",
}


def only(factory: sessionmaker[Session]) -> Connection:
    with factory() as session:
        return session.scalars(select(Connection)).one()


def stored_credentials(factory: sessionmaker[Session]) -> dict[str, object]:
    with factory() as session:
        return connections.credentials(make_secret_box(get_settings()), session.scalars(select(Connection)).one())


def test_connect_microsoft_with_a_secret_from_the_environment(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("ENTRA_SECRET", CLIENT_SECRET)

    result = ok(
        "connect", "microsoft", "--tenant-id", "tenant-1", "--client-id", "client-1",
        "--client-secret-env", "ENTRA_SECRET", "--scope-group", "g-1", "--scope-group", "g-2",
        "--scope-domain", "acme.example", "--include-guests", "--team-group", "g-1",
    )  # fmt: skip

    row = only(factory)
    assert f"as connection {row.id}" in result.stdout
    assert f"deskbridge sync {row.id}" in result.stdout
    assert CLIENT_SECRET not in result.output
    assert (row.kind, row.name) == (ConnectionKind.MICROSOFT, "Microsoft Entra ID")
    assert row.settings == {
        "tenant_id": "tenant-1",
        "client_id": "client-1",
        "scope": {"groups": ["g-1", "g-2"], "domains": ["acme.example"], "include_guests": True},
        "team_groups": ["g-1"],
    }
    assert stored_credentials(factory) == {"client_secret": CLIENT_SECRET}
    assert row.credentials_encrypted is not None
    assert CLIENT_SECRET not in row.credentials_encrypted


def test_connect_microsoft_with_a_certificate(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    pem = tmp_path / "app.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nMIIEvQ-cert\n-----END PRIVATE KEY-----\n")

    result = ok(
        "connect", "microsoft", "--tenant-id", "t", "--client-id", "c", "--name", "Entra (HQ)",
        "--certificate", str(pem), "--thumbprint", " AB12CD ",
    )  # fmt: skip

    assert "MIIEvQ-cert" not in result.output
    assert only(factory).name == "Entra (HQ)"
    assert stored_credentials(factory) == {"private_key": pem.read_text(), "thumbprint": "AB12CD"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "either --client-secret-env"),
        (["--client-secret-env", "ENTRA_SECRET", "--certificate", "app.pem"], "either --client-secret-env"),
        (["--client-secret-env", "NOT_SET_ANYWHERE"], "NOT_SET_ANYWHERE is not set"),
        (["--certificate", "app.pem"], "needs --thumbprint"),
        (["--certificate", "missing.pem", "--thumbprint", "AB"], "cannot read missing.pem"),
        (["--certificate", "notes.txt", "--thumbprint", "AB"], "no PEM private key"),
    ],
)
def test_connect_microsoft_refuses_missing_or_bad_credentials(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: list[str], message: str
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("ENTRA_SECRET", CLIENT_SECRET)
    (tmp_path / "app.pem").write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    (tmp_path / "notes.txt").write_text("hello")
    before = count(factory, OutboxEvent)

    result = failed("connect", "microsoft", "--tenant-id", "t", "--client-id", "c", *extra)

    assert message in result.stderr
    assert count(factory, Connection) == 0
    assert count(factory, OutboxEvent) == before


def test_connect_microsoft_refuses_a_blank_tenant(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("ENTRA_SECRET", CLIENT_SECRET)
    result = failed(
        "connect", "microsoft", "--tenant-id", " ", "--client-id", "c", "--client-secret-env", "ENTRA_SECRET"
    )
    assert "tenant_id" in result.stderr
    assert CLIENT_SECRET not in result.output
    assert count(factory, Connection) == 0


def test_connect_google_with_a_key_file(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(KEY))

    result = ok(
        "connect", "google", "--admin-email", "admin@acme.example", "--key-file", str(key_file),
        "--customer", "C012", "--scope-org-unit", "/Staff",
    )  # fmt: skip

    assert "MIIEvQ-cli-not-a-real-key" not in result.output
    row = only(factory)
    assert (row.kind, row.name) == (ConnectionKind.GOOGLE, "Google Workspace")
    assert row.settings == {
        "admin_email": "admin@acme.example",
        "customer": "C012",
        "scope": {"org_units": ["/Staff"]},
        "team_groups": [],
    }
    assert stored_credentials(factory) == {"service_account_key": KEY}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("not json", "not a JSON key file"),
        (json.dumps({"type": "authorized_user", "private_key": "MIIEvQ-cli-not-a-real-key"}), "not a service-account"),
        (json.dumps({**KEY, "private_key": ""}), "lacks private_key"),
    ],
)
def test_connect_google_refuses_a_bad_key_file_without_quoting_it(
    factory: sessionmaker[Session], tmp_path: Path, content: str | None, message: str
) -> None:
    ok("org", "create", "Acme")
    key_file = tmp_path / "sa.json"
    if content is not None:
        key_file.write_text(content)

    result = failed("connect", "google", "--admin-email", "a@acme.example", "--key-file", str(key_file))

    assert message in result.stderr
    assert "MIIEvQ" not in result.output
    assert count(factory, Connection) == 0


def test_connect_scim_prints_the_token_once_alone_on_stdout(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")

    result = ok("connect", "scim", "--name", "Okta")

    token = result.stdout.strip()
    assert token.startswith("dbscim_")
    assert "\n" not in token
    assert "http://127.0.0.1:8000/scim/v2" in result.stderr
    with factory() as session:
        found = connections.authenticate_scim(session, token)
        assert found is not None
        assert found.name == "Okta"
    listing = ok("connections").stdout
    assert token not in listing


def test_connect_csv_mirrors_teams_by_default(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    result = ok("connect", "csv")
    row = only(factory)
    assert row.settings == {"scope": {}, "team_groups": ["*"]}
    assert f"deskbridge sync {row.id} --file people.csv --dry-run" in result.stdout


def test_connect_csv_with_chosen_teams(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv", "--name", "HR", "--team-group", "ops")
    assert only(factory).settings["team_groups"] == ["ops"]


def test_connect_needs_an_organisation(factory: sessionmaker[Session]) -> None:
    assert "no organisation yet" in failed("connect", "csv").stderr
    ok("org", "create", "Acme")
    ok("org", "create", "Globex")
    assert "--org" in failed("connect", "csv").stderr
    assert "no organisation with slug 'initech'" in failed("connect", "csv", "--org", "initech").stderr
    ok("connect", "csv", "--org", "globex")
    assert count(factory, Connection) == 1


def test_connections_lists_them_with_their_status(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    assert "no connections yet" in ok("connections").stdout
    ok("connect", "csv", "--name", "HR export")
    ok("connect", "scim", "--name", "Okta")
    with factory.begin() as session:
        row = session.scalars(select(Connection).where(Connection.name == "Okta")).one()
        connections.fail(session, row, "The token was refused.", action_required=True, notes=[])

    rows = table_rows(ok("connections", "--org", "acme").stdout)

    assert [row[:4] + row[5:] for row in rows] == [
        ["1", "csv", "HR export", "active", ""],
        ["2", "scim", "Okta", "action_required", "The token was refused."],
    ]
    assert [row[4] for row in rows] == ["never", "never"]
