"""The scheduler's peer jobs (the reconciling poll, pruning deliveries) and the roster cache."""

from __future__ import annotations

from datetime import timedelta

from dramatiq import Message
from sqlalchemy import func, select

from connectors.resourceguru import Roster
from store.columns import utcnow
from store.db import transaction
from store.models import Connection, ConnectionKind, PeerEnvelope
from store.services import peer_envelopes
from sync.peers.rosters import RosterCache
from tests.conftest import BROKER
from tests.worker.peers.conftest import World
from worker.peers import jobs

CREDENTIALS = {"client_id": "k", "client_secret": "s"}


def queued(actor_name: str) -> list[int]:
    """The connections the suite's in-process broker holds `actor_name` jobs for (sent, not run)."""
    messages = [Message.decode(raw) for raw in BROKER.queues["directory"].queue]
    return [message.args[0] for message in messages if message.actor_name == actor_name]


def test_the_poll_queues_peer_connections_due_once(world: World) -> None:
    BROKER.flush_all()
    connection_id = world.connect(ConnectionKind.KADENCE, {}, CREDENTIALS)
    assert jobs.poll(world.runtime) == 1
    assert jobs.poll(world.runtime) == 0  # asked for already: coalesced
    assert queued("sync_connection") == [connection_id]
    with transaction(world.factory) as session:
        connection = session.get_one(Connection, connection_id)
        connection.sync_requested_at = None
        connection.last_synced_at = utcnow()
    assert jobs.poll(world.runtime) == 0  # synced within the interval


def test_the_poll_asks_again_for_deliveries_left_waiting(world: World) -> None:
    BROKER.flush_all()  # what is sent is looked at, never run: the drain has tests of its own
    connection_id = world.connect(ConnectionKind.KADENCE, {}, CREDENTIALS)
    with transaction(world.factory) as session:
        recent = peer_envelopes.receive(session, connection_id, 1, "{}")
        assert recent is not None
    jobs.poll(world.runtime)
    assert queued("apply_envelopes") == []  # its job may still be on its way
    with transaction(world.factory) as session:
        session.get_one(PeerEnvelope, recent).created_at = utcnow() - jobs.STALLED_AFTER - timedelta(seconds=1)
    jobs.poll(world.runtime)
    assert queued("apply_envelopes") == [connection_id]
    with transaction(world.factory) as session:
        peer_envelopes.applied(session.get_one(PeerEnvelope, recent))
    jobs.poll(world.runtime)
    assert queued("apply_envelopes") == [connection_id]  # applied since: nothing more


def test_envelopes_done_with_or_received_a_week_ago_are_forgotten(world: World) -> None:
    connection_id = world.connect(ConnectionKind.KADENCE, {}, CREDENTIALS)
    with transaction(world.factory) as session:
        old = peer_envelopes.receive(session, connection_id, 1, "{}")
        peer_envelopes.receive(session, connection_id, 2, "{}")  # waiting, and recent: kept
        stuck = peer_envelopes.receive(session, connection_id, 3, "{}")
        row = session.get_one(PeerEnvelope, old)
        peer_envelopes.applied(row)
        row.applied_at = utcnow() - timedelta(days=8)
        session.get_one(PeerEnvelope, stuck).created_at = utcnow() - timedelta(days=8)  # never applied
    assert jobs.prune(world.runtime) == 2
    with world.factory() as session:
        assert session.scalar(select(func.count()).select_from(PeerEnvelope)) == 1


def test_a_roster_is_read_once_a_minute_and_again_when_forgotten() -> None:
    now = [0.0]
    cache = RosterCache(ttl=60, clock=lambda: now[0])
    reads: list[int] = []

    def read() -> Roster:
        reads.append(1)
        return Roster(people={}, human_types=frozenset())

    cache.get(1, read)
    cache.get(1, read)
    now[0] = 61
    cache.get(1, read)
    cache.forget(1)
    cache.get(1, read)
    assert len(reads) == 3
