"""Peer deliveries kept once by envelope id, in one statement, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import ConnectionKind, PeerEnvelope
from store.secret_box import SecretBox
from store.services import connections, organisations, peer_envelopes
from store.services.peer_envelopes import Received

BOX = SecretBox([SecretBox.generate_key()])


def _connection(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        organisation = organisations.create(session, "Contoso")
        connection, _ = connections.create(
            session,
            BOX,
            organisation.id,
            ConnectionKind.RESOURCEGURU,
            "Resource Guru",
            settings={"account": "example-corp"},
            credentials={"client_id": "c", "client_secret": "s", "access_token": "a", "refresh_token": "r"},
        )
        return connection.id


def test_an_envelope_is_kept_once(session_factory: sessionmaker[Session]) -> None:
    connection_id = _connection(session_factory)
    with transaction(session_factory) as session:
        first = peer_envelopes.receive(session, connection_id, 41, '{"id": 41}', "booking:7" + "x" * 80)
        again = peer_envelopes.receive(session, connection_id, 41, '{"id": 41, "other": true}', "booking:7")
        other = peer_envelopes.receive(session, connection_id, 42, '{"id": 42}')
    assert first is not None
    assert other not in (None, first)
    assert again is None
    with session_factory() as session:
        row = session.get_one(PeerEnvelope, first)
        assert (row.body, len(row.subject), row.applied_at) == ('{"id": 41}', 64, None)
        assert row.created_at is not None
        assert session.scalar(select(func.count()).select_from(PeerEnvelope)) == 2


def test_an_envelope_for_a_connection_gone_is_refused(session_factory: sessionmaker[Session]) -> None:
    connection_id = _connection(session_factory)
    with pytest.raises(IntegrityError), transaction(session_factory) as session:
        peer_envelopes.receive(session, connection_id + 1, 1, "{}")
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(PeerEnvelope)) == 0


def test_deliveries_are_kept_together_each_with_its_outcome(session_factory: sessionmaker[Session]) -> None:
    connection_id = _connection(session_factory)
    with transaction(session_factory) as session:
        peer_envelopes.receive(session, connection_id, 5, "{}")
    batch = [
        Received(connection_id, 7, '{"id": 7}', "booking:1"),
        Received(connection_id + 1, 8, '{"id": 8}'),  # no such connection
        Received(connection_id, 5, "{}"),  # received before
        Received(connection_id, 6, '{"id": 6}'),
    ]
    with transaction(session_factory) as session:
        assert peer_envelopes.receive_many(session, batch) == [True, None, False, True]
    with session_factory() as session:
        kept = session.scalars(select(PeerEnvelope.envelope_id).order_by(PeerEnvelope.envelope_id)).all()
    assert kept == [5, 6, 7]
