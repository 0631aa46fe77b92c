"""Syncs whose connection's credentials no key opens (DESKBRIDGE_SECRET_KEY changed, or another key in
this process): the connection or calendar says so in `last_error` (status error, so the next poll tries
again once the key is right), the claim is let go, and a metric counts it. Never a silent `active`."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import select

from store.db import transaction
from store.models import Calendar, Connection, ConnectionKind, ConnectionStatus
from store.secret_box import SecretBox
from store.services import calendars
from tests.fakes.graph import FakeGraph
from tests.fakes.ics import FakeIcsServer
from tests.worker.calendar.conftest import World, microsoft, with_runtime
from worker.calendar import batch
from worker.calendar import sync as calendar_sync
from worker.directory import sync as directory_sync


def undecryptable() -> float:
    return (
        REGISTRY.get_sample_value("deskbridge_undecryptable_secrets_total", {"what": "connection_credentials"}) or 0.0
    )


def connection(world: World, connection_id: int) -> Connection:
    with world.factory() as session:
        return session.get_one(Connection, connection_id)


def test_a_directory_sync_says_the_credentials_cannot_be_decrypted(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    counted = undecryptable()
    wrong = with_runtime(world, secret_box=SecretBox([SecretBox.generate_key()]))

    assert directory_sync.run(wrong, connection_id) is None

    row = connection(world, connection_id)
    assert row.status is ConnectionStatus.ERROR
    assert row.last_error is not None
    assert "the connection's credentials cannot be decrypted" in row.last_error
    assert "DESKBRIDGE_SECRET_KEY" in row.last_error
    assert row.sync_lease_until is None  # let go: the next poll tries again
    assert undecryptable() - counted == 1
    assert "connection.action_required" in world.types()  # the status says error: the poll tries again


def test_a_calendar_batch_fails_every_claimed_calendar_with_the_reason(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    ada, bob = world.calendar_id("ada@contoso.example"), world.calendar_id("bob@contoso.example")
    counted = undecryptable()
    wrong = with_runtime(world, secret_box=SecretBox([SecretBox.generate_key()]))

    assert batch.run(wrong, connection_id, [ada, bob]) == {ada: None, bob: None}

    for calendar_id in (ada, bob):
        calendar = world.calendar(calendar_id)
        assert calendar.status is ConnectionStatus.ERROR
        assert calendar.last_error is not None
        assert "cannot be decrypted" in calendar.last_error
    assert undecryptable() - counted == 1


def test_an_ics_feed_says_its_url_cannot_be_decrypted_on_its_connection(world: World, ics: FakeIcsServer) -> None:
    feed = world.connect(ConnectionKind.ICS, {}, {"url": ics.url("/feed.ics")})
    calendar_id = only_calendar(world, feed)
    wrong = with_runtime(world, secret_box=SecretBox([SecretBox.generate_key()]))

    assert calendar_sync.run(wrong, calendar_id) is None

    row = connection(world, feed)
    assert row.status is ConnectionStatus.ERROR
    assert row.last_error is not None
    assert "cannot be decrypted" in row.last_error
    assert ics.requests == []  # nothing was read


def only_calendar(world: World, connection_id: int) -> int:
    """The feed's one calendar, made as `deskbridge connect ics` makes it."""
    with transaction(world.factory) as session:
        calendars.ensure(session, session.get_one(Connection, connection_id))
        return session.scalars(select(Calendar.id).where(Calendar.connection_id == connection_id)).one()
