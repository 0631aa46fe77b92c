"""`deskbridge connect ics` and `--calendars`: feed URLs taken from the environment, never printed whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from deskbridge.wiring import make_secret_box
from store.models import Calendar, Connection, ConnectionKind, Member
from store.services import connections
from tests.cli.conftest import count, failed, ok

TOKEN = "private-9f8e7d6c5b"  # the secret part of the feed URL, searched for in the output
URL = f"https://calendar.example/calendar/ical/will%40acme.example/{TOKEN}/basic.ics"


def only(factory: sessionmaker[Session]) -> Connection:
    with factory() as session:
        return session.scalars(select(Connection)).one()


def test_connect_ics_with_the_url_from_the_environment(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "will@acme.example")
    monkeypatch.setenv("WILL_FEED", URL)

    result = ok("connect", "ics", "--url-env", "WILL_FEED", "--member", "Will@Acme.example")

    row = only(factory)
    assert TOKEN not in result.output
    assert "https://calendar.example/…" in result.stdout
    assert f"Connected calendar feed 'Calendar of Will@Acme.example' to acme as connection {row.id}" in result.stdout
    assert (row.kind, row.settings["member_email"]) == (ConnectionKind.ICS, "will@acme.example")
    assert connections.credentials(make_secret_box(get_settings()), row) == {"url": URL}
    assert row.credentials_encrypted is not None
    assert TOKEN not in row.credentials_encrypted
    # The feed's calendar is there for the worker's next poll, as the person's.
    with factory() as session:
        calendar = session.scalars(select(Calendar)).one()
        member = session.scalars(select(Member).where(Member.email == "will@acme.example")).one()
        assert (calendar.connection_id, calendar.member_id, calendar.last_synced_at) == (row.id, member.id, None)


def test_connect_ics_with_a_url_for_a_resource(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    result = ok("connect", "ics", "--url", "webcal://rooms.example/boardroom.ics", "--name", "Boardroom")
    assert "webcal://rooms.example/…" in result.stdout
    assert "boardroom.ics" not in result.output
    row = only(factory)
    assert (row.name, row.settings.get("member_email")) == ("Boardroom", None)
    with factory() as session:
        assert session.scalars(select(Calendar.member_id)).one() is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "either --url-env VAR or --url URL"),
        (("--url", URL, "--url-env", "WILL_FEED"), "either --url-env VAR or --url URL"),
        (("--url-env", "UNSET_FEED"), "UNSET_FEED is not set or empty"),
        (("--url", f"ftp://calendar.example/{TOKEN}.ics"), "http, https or webcal"),
        (("--url", f"{TOKEN}.ics"), "http, https or webcal"),
        (("--url", URL, "--member", "nobody@acme.example"), "acme has no member nobody@acme.example"),
    ],
)
def test_connect_ics_refuses_bad_input_without_quoting_the_url(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("WILL_FEED", URL)
    monkeypatch.delenv("UNSET_FEED", raising=False)
    result = failed("connect", "ics", *args)
    assert message in result.stderr
    assert TOKEN not in result.output
    assert count(factory, Connection) == 0


def test_calendars_on_microsoft(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("ENTRA_SECRET", "cli-secret")
    base = ("connect", "microsoft", "--tenant-id", "t", "--client-id", "c", "--client-secret-env", "ENTRA_SECRET")
    ok(*base, "--calendars")
    ok(*base, "--name", "Directory only")
    with factory() as session:
        flags = {row.name: row.settings.get("calendars") for row in session.scalars(select(Connection))}
    assert flags == {"Microsoft Entra ID": True, "Directory only": None}
    assert count(factory, Calendar) == 0  # people get theirs once the directory brought them in


def test_calendars_on_google(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    key = {
        "type": "service_account",
        "client_email": "sync@acme.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ-cli\n-----END PRIVATE KEY-----\n",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(key))
    ok("connect", "google", "--admin-email", "it@acme.example", "--key-file", str(key_file), "--calendars")
    assert only(factory).settings["calendars"] is True
