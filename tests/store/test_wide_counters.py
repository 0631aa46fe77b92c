"""Event sequence numbers and delivery ids past 2**31 (issue 12, finding 4), on both stores.

An organisation's events and the deliveries of every organisation will pass the 32-bit range:
those columns are 64-bit on PostgreSQL since migration 0009 (SQLite's INTEGER always was).
"""

from __future__ import annotations

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Delivery, DeliveryAttempt, Organisation, OutboxEvent
from store.secret_box import SecretBox
from store.services import delivery_attempts, desks, outbox_relay, webhook_endpoints
from store.services.delivery_attempts import AttemptOutcome
from tests.conftest import Org

PAST_INT4 = 2**31 + 5


def test_events_and_deliveries_count_past_int4(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        webhook_endpoints.create_endpoint(
            session, acme.organisation.id, "https://example.com/hook", box=SecretBox([SecretBox.generate_key()])
        )
        session.execute(
            update(Organisation).where(Organisation.id == acme.organisation.id).values(last_event_seq=PAST_INT4)
        )
        ids_moved = _start_ids_past_int4(session)
    with transaction(session_factory) as session:
        desks.create(session, acme.organisation.id, "A-1")
    with transaction(session_factory) as session:
        relayed = outbox_relay.relay_due(session, now=utcnow())
    with transaction(session_factory) as session:
        _, delivery_id = relayed.due[-1]  # the desk's event, the last
        delivery_attempts.record_attempt(
            session, delivery_id, AttemptOutcome(status_code=200, duration_ms=5), now=utcnow(), delays=[0]
        )
    with session_factory() as session:
        event = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "desk.created")).one()
        delivery = session.get_one(Delivery, delivery_id)
        attempt = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)).one()
    assert event.seq > 2**31
    assert (delivery.event_id, delivery.event_seq) == (event.id, event.seq)
    assert (delivery.id > 2**31, attempt.id > 2**31) == (ids_moved, ids_moved)


def _start_ids_past_int4(session: Session) -> bool:
    """The next delivery and attempt ids past 2**31, as after a busy year (PostgreSQL: SQLite's row ids
    are 64-bit and have no sequence to move)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    for sequence in ("deliveries_id_seq", "delivery_attempts_id_seq"):
        session.execute(text(f"ALTER SEQUENCE {sequence} RESTART WITH {PAST_INT4}"))
    return True
