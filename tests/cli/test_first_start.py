"""What `make run` does on its first and later starts: the organisation, admin and token, and the welcome."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.bootstrap import ADMIN_EMAIL, ensure_first_organisation, welcome
from deskbridge.cli import greet
from deskbridge.settings import Settings
from store.db import make_engine, make_session_factory
from store.models import ApiToken, Member, MemberStatus, Organisation, OutboxEvent, Role
from store.services import tokens
from tests.cli.conftest import count, ok


def settings_for(factory: sessionmaker[Session], tmp_path: Path) -> Settings:
    return Settings(
        database_url=str(factory.kw["bind"].url),
        public_base_url="http://127.0.0.1:8000/",
        mail_dir=tmp_path / "mail",
        default_timezone="Europe/Berlin",
    )


def test_first_start_creates_organisation_admin_and_token_with_the_api_on(factory: sessionmaker[Session]) -> None:
    first = ensure_first_organisation(factory, "Europe/Berlin")

    assert first.token is not None
    assert first.admin_email == ADMIN_EMAIL
    with factory() as session:
        organisation = session.scalars(select(Organisation)).one()
        admin = session.scalars(select(Member)).one()
        caller = tokens.authenticate(session, first.token)
    assert (organisation.slug, organisation.timezone, organisation.api_enabled) == (first.slug, "Europe/Berlin", True)
    assert (admin.email, admin.role, admin.status, admin.api_access) == (
        ADMIN_EMAIL,
        Role.ADMIN,
        MemberStatus.ACTIVE,
        True,
    )
    assert caller is not None
    assert caller.member.id == admin.id


def test_second_start_creates_nothing_and_returns_no_secret(factory: sessionmaker[Session]) -> None:
    first = ensure_first_organisation(factory, "UTC")
    rows = [count(factory, model) for model in (Organisation, Member, ApiToken, OutboxEvent)]

    again = ensure_first_organisation(factory, "UTC")

    assert again.token is None
    assert (again.organisation, again.slug, again.admin_email) == (first.organisation, first.slug, first.admin_email)
    assert [count(factory, model) for model in (Organisation, Member, ApiToken, OutboxEvent)] == rows


def test_a_store_with_an_organisation_already_gets_no_first_organisation(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")

    first = ensure_first_organisation(factory, "UTC")

    assert (first.slug, first.admin_email, first.token) == ("acme", None, None)
    assert count(factory, Organisation) == 1
    assert count(factory, Member) == 0
    assert "deskbridge member add EMAIL --org acme --admin --api" in "\n".join(welcome(first, "http://x"))


def test_welcome_shows_the_token_and_httpie_examples_only_the_first_time(factory: sessionmaker[Session]) -> None:
    first_text = "\n".join(welcome(ensure_first_organisation(factory, "UTC"), "http://127.0.0.1:8000/"))
    later_text = "\n".join(welcome(ensure_first_organisation(factory, "UTC"), "http://127.0.0.1:8000/"))

    with factory() as session:
        prefix = session.scalars(select(ApiToken.prefix)).one()
    assert prefix in first_text
    assert 'http http://127.0.0.1:8000/api/my_upcoming_bookings/ "Authorization: token ' in first_text
    assert prefix not in later_text
    assert "http http" not in later_text
    assert f"deskbridge token create {ADMIN_EMAIL}" in later_text


def test_serve_greeting_prints_the_secret_once(
    factory: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(factory, tmp_path)

    greet(factory, settings)
    first = capsys.readouterr().out
    greet(factory, settings)
    later = capsys.readouterr().out

    secret = next(word for word in first.split() if word.startswith(tokens.TOKEN_PREFIX))
    with factory() as session:
        assert tokens.authenticate(session, secret) is not None
    assert secret not in later
    assert "http POST http://127.0.0.1:8000/api/create_membership_invitation/" in first
    assert f"emails are written to {tmp_path / 'mail'}" in first


def test_serve_greeting_on_an_unmigrated_database_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    factory = make_session_factory(engine)

    with pytest.raises(typer.Exit) as exited:
        greet(factory, settings_for(factory, tmp_path))

    engine.dispose()
    assert exited.value.exit_code == 1
    assert "deskbridge db upgrade" in capsys.readouterr().err


def test_the_httpie_examples_send_what_the_api_expects(factory: sessionmaker[Session]) -> None:
    """Each example line, as pasted, through httpie itself (offline: it prints the request it would send)."""
    first = ensure_first_organisation(factory, "UTC")
    assert first.token is not None
    examples = [line.strip() for line in welcome(first, "http://127.0.0.1:8000") if line.strip().startswith("http ")]
    assert len(examples) == 2

    sent = [_httpie_offline(example) for example in examples]

    assert sent[0].startswith("GET /api/my_upcoming_bookings/ HTTP/1.1")
    assert sent[1].startswith("POST /api/create_membership_invitation/ HTTP/1.1")
    for request in sent:
        assert f"Authorization: token {first.token}" in request.splitlines()
    assert sent[1].endswith('{"email_invited": "someone@example.com"}')


def _httpie_offline(example: str) -> str:
    words = shlex.split(example)
    assert words[0] == "http"
    command = [sys.executable, "-m", "httpie", "--offline", "--ignore-stdin", *words[1:]]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
