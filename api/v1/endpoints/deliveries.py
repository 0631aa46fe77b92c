"""The deliveries log (per endpoint and per event) and replays, for admins.

A replay only queues work: the worker sends it, in event order, after the request has committed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from api.deps import DB, AdminCaller
from api.errors import ApiError
from api.v1.common import RequestBody, Resource, Time, Timestamp, problems
from api.v1.endpoints.webhooks import Context, Endpoint
from api.v1.pagination import DEFAULT_LIMIT, MAX_LIMIT, Keyset, Page, Paging, fetch, page_of
from store.columns import MAX_BIG_KEY, utcnow
from store.errors import NotFound
from store.models import Delivery, OutboxEvent
from store.models import DeliveryStatus as Stored
from store.services import deliveries, delivery_replays

router = APIRouter(prefix="/webhooks/{webhook_id}/deliveries", tags=["webhooks"])
events_router = APIRouter(prefix="/events", tags=["webhooks"])

KEYSET = Keyset("deliveries", (Delivery.id,))
EventId = Annotated[str, Field(min_length=1, max_length=40, description="The event's id (evt_…).")]
DeliveryStatus = Literal["pending", "succeeded", "exhausted"]
DeliveryCursor = Annotated[int | None, Query(ge=0, le=MAX_BIG_KEY)]


class AttemptOut(Resource):
    """One HTTP attempt of a delivery."""

    attempted_at: Timestamp
    status_code: int | None = Field(description="Null when no answer came.")
    duration_ms: int
    response_excerpt: str = Field(description="The start of the answer's body (at most 1 KiB).")
    error: str | None = Field(description="Timeout, connection error, refused address, redirect…")
    succeeded: bool


class DeliveryOut(BaseModel):
    """One event on its way to one endpoint, with every attempt made."""

    id: int
    endpoint_id: int
    event_id: str = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: str
    status: DeliveryStatus = Field(description="pending (waiting for an attempt), succeeded or exhausted.")
    attempt_count: int = Field(description="Every attempt made, replays included (as many as `attempts` lists).")
    next_attempt_at: Timestamp | None = Field(
        description="When the next attempt is due (a retry's time after a failure); null once finished."
    )
    delivered_at: Timestamp | None
    created_at: Timestamp
    attempts: list[AttemptOut] = Field(description="Every attempt, of every round, oldest first.")


class DeliveryPage(BaseModel):
    """A page of the deliveries log, newest first."""

    data: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `before` for the older deliveries; null when none is older.")
    prev_cursor: str | None = Field(
        description="Pass as `after` for the newer deliveries; null when none is newer (yet: poll again later)."
    )
    has_more: bool = Field(
        description="Whether more deliveries follow in the direction asked (older, or newer with `after`)."
    )


class ReplayIn(RequestBody):
    """The event to send again."""

    event_id: EventId


class ReplayFailedIn(RequestBody):
    """From when on to send failed deliveries again."""

    since: Time = Field(description="Deliveries made at or after this time (ISO 8601 with an offset).")


class Replayed(BaseModel):
    """The deliveries queued, in the order they will be sent."""

    delivery_ids: list[int]


def _render(db: Session, rows: list[Delivery]) -> list[DeliveryOut]:
    attempts = deliveries.attempts_of(db, [row.id for row in rows])
    event_ids = {row.event_id for row in rows}
    query = select(OutboxEvent.id, OutboxEvent.type).where(OutboxEvent.id.in_(event_ids))
    types = {event_id: event_type for event_id, event_type in db.execute(query)}
    return [
        DeliveryOut(
            id=row.id,
            endpoint_id=row.endpoint_id,
            event_id=row.event_id,
            event_type=types[row.event_id],
            status=row.status.value,
            attempt_count=len(attempts[row.id]),
            next_attempt_at=row.due_at if row.status is Stored.PENDING else None,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
            attempts=[AttemptOut.model_validate(attempt) for attempt in attempts[row.id]],
        )
        for row in rows
    ]


@router.get("", summary="List an endpoint's deliveries", responses=problems(404, 422))
def list_deliveries(
    endpoint: Endpoint,
    db: DB,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this state.")] = None,
    event_id: Annotated[str | None, Query(max_length=40, description="Only the delivery of this event.")] = None,
    before: Annotated[DeliveryCursor, Query(description="A `next_cursor`: the deliveries older than it.")] = None,
    after: Annotated[DeliveryCursor, Query(description="A `prev_cursor`: the deliveries newer than it.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many deliveries a page holds.")] = DEFAULT_LIMIT,
) -> DeliveryPage:
    """The endpoint's deliveries, newest first, each with its attempts (admins only). Walk back with
    `before` (each page's `next_cursor`) and forward with `after` (its `prev_cursor`); the page after a
    cursor is the one nearest to it, still newest first."""
    if before is not None and after is not None:
        raise ApiError(422, "Give `before` or `after`, not both.", code="invalid_cursor", field="after")
    query = deliveries.select_deliveries(
        endpoint.organisation_id, endpoint_id=endpoint.id, event_id=event_id, status=status
    )
    if after is not None:
        rows = list(db.scalars(query.where(Delivery.id > after).order_by(Delivery.id).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit][::-1]
    else:
        older_than = query if before is None else query.where(Delivery.id < before)
        rows = list(db.scalars(older_than.order_by(Delivery.id.desc()).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
    if not rows:
        return DeliveryPage(data=[], next_cursor=None, prev_cursor=None, has_more=False)
    older = more if after is None else _any(db, query.where(Delivery.id < rows[-1].id))
    newer = more if after is not None else _any(db, query.where(Delivery.id > rows[0].id))
    return DeliveryPage(
        data=_render(db, rows),
        next_cursor=str(rows[-1].id) if older else None,
        prev_cursor=str(rows[0].id) if newer else None,
        has_more=more,
    )


def _any(db: Session, query: Select[Delivery]) -> bool:
    return bool(db.scalar(select(exists(query.with_only_columns(Delivery.id)))))


@router.post("/replay", status_code=202, summary="Replay one event", responses=problems(400, 404, 409, 413, 415))
def replay_event(body: ReplayIn, endpoint: Endpoint, db: DB, ctx: Context) -> Replayed:
    """Send one of the organisation's events to the endpoint again, even one it never had (admins
    only). 404 for an unknown event; 409 when the endpoint is disabled or does not subscribe to it."""
    delivery_id = delivery_replays.replay_event(db, endpoint, body.event_id, now=utcnow())
    paused = endpoint.paused
    db.commit()
    if not paused:  # a paused endpoint's pending deliveries go out when it is resumed
        ctx.jobs.deliver_backlog([delivery_id])
    return Replayed(delivery_ids=[delivery_id])


@router.post(
    "/replay-failed", status_code=202, summary="Replay failed deliveries", responses=problems(400, 404, 409, 413, 415)
)
def replay_failed(body: ReplayFailedIn, endpoint: Endpoint, db: DB, ctx: Context) -> Replayed:
    """Send again, in event order, every delivery to the endpoint made since `since` that was given
    up on (admins only). 409 when the endpoint is disabled: enable it first."""
    delivery_ids = delivery_replays.replay_failed(db, endpoint, since=body.since, now=utcnow())
    paused = endpoint.paused
    db.commit()
    if delivery_ids and not paused:
        ctx.jobs.deliver_backlog(delivery_ids)
    return Replayed(delivery_ids=delivery_ids)


@events_router.get("/{event_id}/deliveries", summary="List an event's deliveries", responses=problems(404, 422))
def list_event_deliveries(
    event_id: Annotated[str, Path(min_length=1, max_length=40, description="The event's id (evt_…).")],
    caller: AdminCaller,
    db: DB,
    paging: Paging,
) -> Page[DeliveryOut]:
    """Where one event went: its delivery to each endpoint, with the attempts (admins only)."""
    event = db.get(OutboxEvent, event_id)
    if event is None or event.organisation_id != caller.organisation.id:
        raise NotFound(f"no event {event_id}")
    rows, cursor = fetch(db, deliveries.select_deliveries(caller.organisation.id, event_id=event_id), KEYSET, paging)
    return page_of(_render(db, rows), cursor)
