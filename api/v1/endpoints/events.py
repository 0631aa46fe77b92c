"""The outbox as a pull API: every change in the organisation, in order, for catching up without webhooks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import DB, AdminCaller, ApiCaller
from api.errors import ApiError
from api.v1.common import MAX_SEQ, Timestamp, problems
from api.v1.pagination import DEFAULT_LIMIT, MAX_LIMIT
from store import event_types
from store.models import Organisation, OutboxEvent
from store.services import events

router = APIRouter(prefix="/events", tags=["events"])
types_router = APIRouter(prefix="/event-types", tags=["events"])


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


class EventTypeOut(BaseModel):
    """One event type of the catalog (`store/event_types.py`, where the code that records it declares it)."""

    type: str = Field(description="The name endpoints and hooks subscribe to, such as `booking.created`.")
    description: str
    data_schema: dict[str, Any] = Field(description="The JSON Schema (2020-12) of the event's `data`.")
    example: dict[str, Any] = Field(description="A representative `data`; REST hooks' samples show the same.")


class EventTypeList(BaseModel):
    """Every event type, in catalog order (grouped by family)."""

    data: list[EventTypeOut]


@types_router.get("", summary="List the event types")
def list_event_types(caller: ApiCaller) -> EventTypeList:
    """Every event type deskbridge records, with what its `data` holds and an example. Webhook
    endpoints and REST hooks subscribe to these names, or to a wildcard (`booking.*`, `*`) that matches
    some."""
    return EventTypeList(
        data=[
            EventTypeOut(type=kind.name, description=kind.description, data_schema=kind.schema(), example=kind.example)
            for kind in event_types.CATALOG.values()
        ]
    )


@router.get("", summary="Read the event feed", responses=problems(400, 422))
def list_events(
    caller: AdminCaller,
    db: DB,
    after: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="The `next_cursor` (or `seq`) of the last event you processed.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many events a page holds.")] = DEFAULT_LIMIT,
) -> EventPage:
    """The organisation's events in sequence order (admins only). Start with `after=0`, keep the
    `next_cursor` of each page and pass it back as `after`; no event is ever skipped or repeated. An
    `after` beyond the organisation's last event is a 400: no page ever gave it."""
    rows = list(db.scalars(events.select_events(caller.organisation.id, after=after).limit(limit + 1)))
    if not rows and after > 0:
        last_seq = db.scalar(select(Organisation.last_event_seq).where(Organisation.id == caller.organisation.id))
        if last_seq is None or after > last_seq:
            detail = f"No event has the cursor {after}: the latest is {last_seq or 0}."
            raise ApiError(400, detail, code="bad_cursor", field="after")
    page = rows[:limit]
    last = page[-1].seq if page else after
    return EventPage(data=[EventOut.of(row) for row in page], next_cursor=str(last), has_more=len(rows) > limit)
