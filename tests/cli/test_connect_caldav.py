"""`deskbridge connect caldav`: a person's CalDAV account, the password read from the environment only,
kept encrypted and never printed; its calendar there for the worker's next poll."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from deskbridge.wiring import make_secret_box
from store.models import Calendar, Connection, ConnectionKind, Member
from store.services import connections
from tests.cli.conftest import count, failed, ok

PASSWORD = "app-password-0f9a"


def test_connect_caldav(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "will@acme.example")
    monkeypatch.setenv("WILL_DAV", PASSWORD)

    result = ok(
        "connect", "caldav", "--url", "https://dav.example/", "--username", "will",
        "--password-env", "WILL_DAV", "--member", "Will@Acme.example", "--calendar", "Work",
    )  # fmt: skip

    assert PASSWORD not in result.output
    assert "Connected CalDAV calendar 'Calendars of Will@Acme.example' to acme" in result.stdout
    with factory() as session:
        row = session.scalars(select(Connection)).one()
        assert (row.kind, row.settings["member_email"], row.settings["calendar"]) == (
            ConnectionKind.CALDAV,
            "will@acme.example",
            "Work",
        )
        assert connections.credentials(make_secret_box(get_settings()), row) == {
            "url": "https://dav.example/",
            "username": "will",
            "password": PASSWORD,
        }
        calendar = session.scalars(select(Calendar)).one()
        member = session.scalars(select(Member).where(Member.email == "will@acme.example")).one()
        assert (calendar.connection_id, calendar.member_id) == (row.id, member.id)


def test_connect_caldav_without_the_password_in_the_environment(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "will@acme.example")
    monkeypatch.delenv("UNSET_DAV", raising=False)

    result = failed(
        "connect", "caldav", "--url", "https://dav.example/", "--username", "will",
        "--password-env", "UNSET_DAV", "--member", "will@acme.example",
    )  # fmt: skip

    assert "UNSET_DAV is not set" in result.stderr
    assert count(factory, Connection) == 0
