"""`deskbridge key new` and `deskbridge key rotate`: a key the box takes, and stored secrets moved onto the
newest key (all or nothing), so the old key can go."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from store.db import transaction
from store.models import Connection, ConnectionKind, WebhookEndpoint
from store.secret_box import SecretBox
from store.services import connections, organisations, webhook_endpoints
from tests.cli.conftest import failed, ok


def use_keys(monkeypatch: pytest.MonkeyPatch, *keys: str) -> None:
    monkeypatch.setenv("DESKBRIDGE_SECRET_KEY", ",".join(keys))
    get_settings.cache_clear()


def stored(factory: sessionmaker[Session]) -> tuple[str, str]:
    with factory() as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        connection = session.scalars(select(Connection)).one()
        assert connection.credentials_encrypted is not None
        return endpoint.secret_encrypted, connection.credentials_encrypted


@pytest.fixture
def old_key(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> str:
    """An organisation with a webhook and a connection whose secrets the old key encrypted."""
    key = Fernet.generate_key().decode()
    box = SecretBox([key])
    with transaction(factory) as session:
        organisation = organisations.create(session, "Acme")
        webhook_endpoints.create_endpoint(session, organisation.id, "https://hooks.example/in", box=box)
        connections.create(
            session,
            box,
            organisation.id,
            ConnectionKind.ICS,
            "Feed",
            credentials={"url": "https://calendar.example/feed.ics"},
        )
    use_keys(monkeypatch, key)
    return key


def test_key_new_prints_a_key_alone_on_stdout() -> None:
    result = ok("key", "new")
    Fernet(result.stdout.strip())
    assert result.stdout.strip() != ok("key", "new").stdout.strip()


def test_rotate_moves_every_secret_onto_the_new_key(
    factory: sessionmaker[Session], old_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_before, credentials_before = stored(factory)
    new_key = Fernet.generate_key().decode()
    use_keys(monkeypatch, new_key, old_key)

    assert "Re-encrypted 2 secret(s)" in ok("key", "rotate").stdout

    secret_after, credentials_after = stored(factory)
    new_only = SecretBox([new_key])
    assert new_only.decrypt(secret_after) == SecretBox([old_key]).decrypt(secret_before)
    assert new_only.decrypt(credentials_after) == SecretBox([old_key]).decrypt(credentials_before)


def test_rotate_without_the_old_key_changes_nothing_and_says_which(
    factory: sessionmaker[Session], old_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = stored(factory)
    use_keys(monkeypatch, Fernet.generate_key().decode())

    result = failed("key", "rotate")

    assert "webhook 1" in result.stderr
    assert "connection 1" in result.stderr
    assert "nothing was re-encrypted" in result.stderr
    assert stored(factory) == before
