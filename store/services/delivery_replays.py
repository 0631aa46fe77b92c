"""Replays: an event sent to an endpoint again, or every exhausted delivery since a time, as new rounds
of attempts (their attempt logs kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import NotAllowed, NotFound
from store.models import Delivery, DeliveryStatus, OutboxEvent, WebhookEndpoint
from store.services.deliveries import insert_missing, new_delivery
from store.services.webhook_endpoints import matches


def replay_event(session: Session, endpoint: WebhookEndpoint, event_id: str, *, now: datetime) -> int:
    """Send one of the organisation's events to the endpoint again; returns the delivery's id.

    The delivery is made when there is none (the event predates the endpoint); a finished one starts
    a new round of attempts due at `now`, its attempt log kept. NotFound for an unknown event;
    NotAllowed when the endpoint is disabled or does not subscribe to the event's type.
    """
    _check_replayable(endpoint)
    event = session.get(OutboxEvent, event_id)
    if event is None or event.organisation_id != endpoint.organisation_id:
        raise NotFound(f"no event {event_id}")
    if not matches(endpoint.event_types, event.type):
        raise NotAllowed(f"this endpoint does not subscribe to {event.type}")
    insert_missing(session, [new_delivery(event, endpoint, now)])
    delivery = session.scalars(
        select(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.event_id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if delivery.status is DeliveryStatus.PENDING:
        delivery.next_attempt_at = delivery.due_at = now
    else:
        _new_round(delivery, now)
    return delivery.id


def replay_failed(session: Session, endpoint: WebhookEndpoint, *, since: datetime, now: datetime) -> list[int]:
    """Start a new round for every exhausted delivery of the endpoint created since `since`; ids in event order.

    NotAllowed when the endpoint is disabled.
    """
    _check_replayable(endpoint)
    exhausted = session.scalars(
        select(Delivery)
        .where(
            Delivery.endpoint_id == endpoint.id,
            Delivery.status == DeliveryStatus.EXHAUSTED,
            Delivery.created_at >= since,
        )
        .order_by(Delivery.event_seq, Delivery.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for delivery in exhausted:
        _new_round(delivery, now)
    return [delivery.id for delivery in exhausted]


def _check_replayable(endpoint: WebhookEndpoint) -> None:
    if endpoint.disabled_at is not None:
        raise NotAllowed("this endpoint is disabled; enable it before replaying")


def _new_round(delivery: Delivery, now: datetime) -> None:
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = delivery.due_at = now
    delivery.delivered_at = None
