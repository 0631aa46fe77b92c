"""Push-channel bookkeeping (store/services/push_channels.py), one for a connection's directory and its
calendars: kept with a hashed secret, verified, told apart, extended and dropped; which ones are watched."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Calendar, ConnectionKind, ConnectionStatus
from store.secret_box import SecretBox
from store.services import connections, push_channels
from tests.conftest import Org

BOX = SecretBox([SecretBox.generate_key()])
SECRET = "channel-secret-0123"


def _graph(factory: sessionmaker[Session], org: Org) -> tuple[int, int]:
    """A Microsoft connection with calendars on, and one calendar of it."""
    with transaction(factory) as session:
        connection, _ = connections.create(
            session,
            BOX,
            org.organisation.id,
            ConnectionKind.MICROSOFT,
            "Entra",
            settings={"tenant_id": "t", "client_id": "c", "calendars": True},
            credentials={"client_secret": "x"},
        )
        calendar = Calendar(
            organisation_id=org.organisation.id, connection_id=connection.id, member_id=org.admin.id, address="a@x"
        )
        session.add(calendar)
        session.flush()
        return connection.id, calendar.id


def _add(
    factory: sessionmaker[Session], connection_id: int, calendar_id: int | None, provider_id: str, **extra: str
) -> int:
    with transaction(factory) as session:
        channel = push_channels.add(
            session,
            connection_id,
            calendar_id,
            provider_id=provider_id,
            resource="users",
            expires_at=utcnow() + timedelta(days=1),
            secret=SECRET,
            **extra,
        )
        return channel.id


def test_a_directorys_channels_and_a_calendars_are_told_apart(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id, calendar_id = _graph(session_factory, acme)
    own = _add(session_factory, connection_id, None, "sub-users")
    mine = _add(session_factory, connection_id, calendar_id, "sub-events")
    with session_factory() as session:
        assert [row.id for row in push_channels.held(session, connection_id, None)] == [own]
        assert [row.id for row in push_channels.held(session, connection_id, calendar_id)] == [mine]
        assert {
            key: [row.id for row in rows] for key, rows in push_channels.of_calendars(session, connection_id).items()
        } == {calendar_id: [mine]}
        assert push_channels.pushing_connection_ids(session) == [connection_id]
        assert push_channels.pushing_calendar_ids(session) == [calendar_id]


def test_only_the_secret_and_resource_id_verify(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id, _ = _graph(session_factory, acme)
    channel_id = _add(session_factory, connection_id, None, "google-channel", resource_id="res-1")
    with session_factory() as session:
        [row] = push_channels.held(session, connection_id, None)
        assert row.secret_hash != SECRET  # kept hashed
        found = push_channels.verify(session, "google-channel", SECRET, "res-1")
        assert found is not None
        assert found.id == channel_id
        assert push_channels.verify(session, "google-channel", SECRET + "x", "res-1") is None
        assert push_channels.verify(session, "google-channel", SECRET, "res-2") is None
        assert push_channels.verify(session, "unknown", SECRET, "res-1") is None


def test_extended_then_dropped(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id, _ = _graph(session_factory, acme)
    channel_id = _add(session_factory, connection_id, None, "sub-users")
    later = utcnow() + timedelta(days=2)
    with transaction(session_factory) as session:
        push_channels.extend(session, channel_id, later)
    with session_factory() as session:
        [row] = push_channels.held(session, connection_id, None)
        assert row.expires_at == later
    with transaction(session_factory) as session:
        push_channels.drop(session, channel_id)
        push_channels.drop(session, channel_id)  # gone already: nothing to do
    with session_factory() as session:
        assert push_channels.held(session, connection_id, None) == []


def test_a_connection_waiting_for_an_admin_is_not_watched(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id, _ = _graph(session_factory, acme)
    with transaction(session_factory) as session:
        connections.get(session, acme.organisation.id, connection_id).status = ConnectionStatus.ACTION_REQUIRED
    with session_factory() as session:
        assert push_channels.pushing_connection_ids(session) == []
        assert push_channels.pushing_calendar_ids(session) == []
