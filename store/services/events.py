"""Reading the outbox: an organisation's events in sequence order, for the pull API."""

from __future__ import annotations

from sqlalchemy import Select, select

from store.models import OutboxEvent


def select_events(organisation_id: int, *, after: int = 0) -> Select[OutboxEvent]:
    """The organisation's events with a sequence number above `after`, in sequence order."""
    return (
        select(OutboxEvent)
        .where(OutboxEvent.organisation_id == organisation_id, OutboxEvent.seq > after)
        .order_by(OutboxEvent.seq)
    )
