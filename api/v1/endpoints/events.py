"""The outbox as a pull API: every change in the organisation, in order, for catching up without webhooks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import DB, AdminCaller
from api.v1.common import MAX_SEQ, Timestamp, problems
from api.v1.pagination import DEFAULT_LIMIT, MAX_LIMIT
from store.models import OutboxEvent
from store.services import events

router = APIRouter(prefix="/events", tags=["events"])


class EventOut(BaseModel):
    """One change, as webhooks deliver it."""

    id: str = Field(description="Stable and unique: the `webhook-id` of the same event.")
    seq: int = Field(description="The event's position in the organisation's sequence.")
    type: str = Field(description="Dotted and past tense, such as `booking.created`.")
    timestamp: Timestamp
    data: dict[str, Any]

    @classmethod
    def of(cls, event: OutboxEvent) -> EventOut:
        """The event as the API shows it."""
        return cls(id=event.id, seq=event.seq, type=event.type, timestamp=event.created_at, data=event.data)


class EventPage(BaseModel):
    """Events after the given position, oldest first."""

    data: list[EventOut]
    next_cursor: str = Field(
        description="Pass as `after` to continue. Never null: when `has_more` is false, poll again later with it."
    )
    has_more: bool = Field(description="Whether more events are waiting right now.")


@router.get("", summary="Read the event feed", responses=problems(422))
def list_events(
    caller: AdminCaller,
    db: DB,
    after: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="The `next_cursor` (or `seq`) of the last event you processed.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many events a page holds.")] = DEFAULT_LIMIT,
) -> EventPage:
    """The organisation's events in sequence order (admins only). Start with `after=0`, keep the
    `next_cursor` of each page and pass it back as `after`; no event is ever skipped or repeated."""
    rows = list(db.scalars(events.select_events(caller.organisation.id, after=after).limit(limit + 1)))
    page = rows[:limit]
    last = page[-1].seq if page else after
    return EventPage(data=[EventOut.of(row) for row in page], next_cursor=str(last), has_more=len(rows) > limit)
