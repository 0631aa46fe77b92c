"""The outbox relay: committed events become deliveries, one per endpoint that wants each.

Deliveries are bookkeeping and record no event: an event per delivery would be relayed again and
feed itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Row, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from store.models import OutboxEvent, WebhookEndpoint
from store.services.deliveries import insert_missing, new_delivery
from store.services.delivery_attempts import DeliveryJob
from store.services.webhook_endpoints import matches

_EVENTS: Table = OutboxEvent.__table__  # type: ignore[assignment]


def relay(session: Session, *, limit: int = 500, now: datetime) -> list[int]:
    """Turn up to `limit` unrelayed events, oldest first, into deliveries, and mark them relayed.

    Each event gets one delivery per endpoint of its organisation that is not disabled, existed when
    the event was written and wants its type; `endpoint.disabled` never goes to the endpoint it is
    about. Deliveries that exist already are left alone, so relaying again is harmless. On PostgreSQL
    concurrent relays take disjoint events (SKIP LOCKED); SQLite has one writer at a time.

    Returns the ids of the new deliveries that are due now (those of paused endpoints wait), in
    event order.
    """
    return [delivery_id for _, delivery_id in relay_due(session, limit=limit, now=now).due]


@dataclass(frozen=True)
class Relayed:
    """What one `relay_due` did: how many events it took, and the new deliveries due now (with what
    sending each takes, when asked for)."""

    events: int
    due: list[tuple[int, int]]  # (endpoint id, delivery id), in event order
    jobs: list[DeliveryJob] = field(default_factory=list)  # the same deliveries, in the same order


def relay_due(
    session: Session,
    *,
    limit: int = 500,
    now: datetime,
    lease_until: datetime | None = None,
    jobs_up_to: int = 0,
) -> Relayed:
    """As `relay`; with `lease_until`, the deliveries due now are made leased until then (see `lease`),
    for a caller that enqueues them at once. When at most `jobs_up_to` are due, what their attempts
    need too (as `delivery_attempts.attempt_contexts` reads it), for a caller that sends them itself."""
    events = _take_unrelayed(session, limit, now)
    if not events:
        return Relayed(0, [])
    endpoints = _endpoints_by_organisation(session, {event.organisation_id for event in events})
    rows = [
        new_delivery(event, endpoint, now, due=now if endpoint.paused or lease_until is None else lease_until)
        for event in events
        for endpoint in endpoints.get(event.organisation_id, ())
        if _wants(endpoint, event)
    ]
    created = insert_missing(session, rows)
    by_id = {endpoint.id: endpoint for group in endpoints.values() for endpoint in group}
    paused = {endpoint.id for group in endpoints.values() for endpoint in group if endpoint.paused}
    position = {event.id: index for index, event in enumerate(events)}
    due = [
        (position[event_id], endpoint_id, delivery_id)
        for delivery_id, endpoint_id, event_id in created
        if endpoint_id not in paused
    ]
    due.sort()
    made = []
    if len(due) <= jobs_up_to:
        made = [_job(delivery_id, events[at], by_id[endpoint_id]) for at, endpoint_id, delivery_id in due]
    return Relayed(len(events), [(endpoint_id, delivery_id) for _, endpoint_id, delivery_id in due], made)


def has_unrelayed(session: Session) -> bool:
    """Whether unrelayed events remain that no other relay is holding (so relaying again has work)."""
    # Events another relay has locked are skipped: they are in hand, and waiting on them would spin.
    found = session.scalar(
        select(OutboxEvent.id).where(OutboxEvent.relayed_at.is_(None)).limit(1).with_for_update(skip_locked=True)
    )
    return found is not None


def oldest_unrelayed(session: Session) -> datetime | None:
    """When the oldest event still waiting for the relay was written (the outbox lag), or None."""
    return session.scalar(select(func.min(OutboxEvent.created_at)).where(OutboxEvent.relayed_at.is_(None)))


# The oldest unrelayed events taken and marked relayed in one statement (the transaction makes the
# deliveries before it commits, so no event is marked without them).
_TAKE_UNRELAYED = (
    update(_EVENTS)
    .where(
        _EVENTS.c.id.in_(
            select(_EVENTS.c.id)
            .where(_EVENTS.c.relayed_at.is_(None))
            .order_by(_EVENTS.c.created_at, _EVENTS.c.organisation_id, _EVENTS.c.seq)
            .limit(bindparam("limit", type_=Integer))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(relayed_at=bindparam("relayed_now"))
    .returning(
        _EVENTS.c.id, _EVENTS.c.organisation_id, _EVENTS.c.seq, _EVENTS.c.type, _EVENTS.c.created_at, _EVENTS.c.data
    )
)
# KEY SHARE: an endpoint cannot be deleted under the relay (its new deliveries would lose their
# foreign key), yet attempts may still update it. Only the columns the relay reads: loading whole
# endpoints (secrets and all) as ORM objects cost more than the rest of a small relay pass.
_LIVE_ENDPOINTS = (
    select(
        WebhookEndpoint.id,
        WebhookEndpoint.organisation_id,
        WebhookEndpoint.created_at,
        WebhookEndpoint.event_types,
        WebhookEndpoint.paused,
        # What sending takes, so that a relay that sends the deliveries itself need not read them again.
        WebhookEndpoint.url,
        WebhookEndpoint.payload_format,
        WebhookEndpoint.kind,
        WebhookEndpoint.secret_encrypted,
        WebhookEndpoint.previous_secret_encrypted,
        WebhookEndpoint.previous_secret_expires_at,
        WebhookEndpoint.signature,
        WebhookEndpoint.private_key_encrypted,
        WebhookEndpoint.ordered,
        WebhookEndpoint.rate_limit_per_second,
    )
    .where(
        WebhookEndpoint.organisation_id.in_(bindparam("organisation_ids", expanding=True)),
        WebhookEndpoint.disabled_at.is_(None),
    )
    .order_by(WebhookEndpoint.id)
    .with_for_update(read=True, key_share=True)
)


def _take_unrelayed(session: Session, limit: int, now: datetime) -> list[Row[Any]]:
    """The oldest unrelayed events (up to `limit`), marked relayed at `now`, in the order they are relayed."""
    taken = session.execute(_TAKE_UNRELAYED, {"limit": limit, "relayed_now": now}).all()
    return sorted(taken, key=lambda event: (event.created_at, event.organisation_id, event.seq))


def _endpoints_by_organisation(session: Session, organisation_ids: set[int]) -> dict[int, list[Row[Any]]]:
    found = session.execute(_LIVE_ENDPOINTS, {"organisation_ids": list(organisation_ids)}).all()
    grouped: dict[int, list[Row[Any]]] = defaultdict(list)
    for endpoint in cast(Sequence[Row[Any]], found):
        grouped[endpoint.organisation_id].append(endpoint)
    return grouped


def _job(delivery_id: int, event: Row[Any], endpoint: Row[Any]) -> DeliveryJob:
    """A new delivery's attempt context, as `attempt_contexts` would read it (no attempt made yet)."""
    return DeliveryJob(
        delivery_id=delivery_id,
        attempts=0,
        organisation_id=event.organisation_id,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        payload_format=endpoint.payload_format,
        kind=endpoint.kind,
        paused=endpoint.paused,
        disabled=False,
        secret_encrypted=endpoint.secret_encrypted,
        previous_secret_encrypted=endpoint.previous_secret_encrypted,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        event_id=event.id,
        event_type=event.type,
        event_seq=event.seq,
        event_created_at=event.created_at,
        event_data=event.data,
        signature=endpoint.signature,
        private_key_encrypted=endpoint.private_key_encrypted,
        ordered=endpoint.ordered,
        rate_limit_per_second=endpoint.rate_limit_per_second,
    )


def _wants(endpoint: Row[Any], event: Row[Any]) -> bool:
    # An endpoint made after the event (e.g. while the relay was behind) does not get it.
    if endpoint.created_at > event.created_at:
        return False
    if event.type == "endpoint.disabled" and event.data.get("endpoint_id") == endpoint.id:
        return False
    return matches(endpoint.event_types, event.type)
