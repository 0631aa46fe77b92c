"""REST hooks, as Zapier (and n8n) subscribe to events: one target URL per subscription and event type.

A hook is a webhook endpoint of kind `rest_hook` that sends JSON arrays (one trigger per item in
Zapier). A `410 Gone` from its target deletes it (the worker does). Admins only, like /v1/webhooks,
which also lists hooks with their deliveries.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import Select

from api.deps import DB, AdminCaller
from api.errors import ApiError
from api.v1.common import RequestBody, Resource, Timestamp, path_id, problems
from api.v1.endpoints.webhooks import Context, Url, check_target
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store import event_types
from store.columns import utcnow
from store.errors import NotFound
from store.models import EndpointKind, OutboxEvent, WebhookEndpoint
from store.services import webhook_endpoints
from store.services.events import select_events
from store.times import iso

router = APIRouter(prefix="/hooks", tags=["hooks"])

KEYSET = Keyset("hooks", (WebhookEndpoint.id,))
HookId = Annotated[int, path_id("The hook's id (the `id` its subscription answered).")]
EventName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
SAMPLE_COUNT = 3  # Zapier shows a few to pick from when a Zap is set up
SAMPLE_ID = "evt_sample"


class HookOut(Resource):
    """A REST hook subscription."""

    id: int = Field(description="Pass it to DELETE /v1/hooks/{id} to unsubscribe.")
    target_url: str
    event: str = Field(description="The event type, or wildcard, it subscribes to.")
    created_at: Timestamp

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> HookOut:
        """The endpoint as a subscription."""
        return cls(
            id=endpoint.id,
            target_url=endpoint.url,
            event=endpoint.event_types[0] if endpoint.event_types else "*",
            created_at=endpoint.created_at,
        )


class HookIn(RequestBody):
    """Where to send which events, as Zapier's subscribe step sends it."""

    target_url: Url = Field(description="Zapier's `bundle.targetUrl`; must be a public http(s) URL.")
    event: EventName = Field(description='An event type such as "booking.created", or a wildcard ("booking.*", "*").')


class HookEvent(BaseModel):
    """One event as hooks deliver it (each item of the JSON array)."""

    id: str = Field(description="The event id; stable, use it to drop duplicates.")
    type: str
    timestamp: str = Field(description="ISO 8601 in UTC.")
    data: dict[str, Any]


@router.post("", status_code=201, summary="Subscribe a REST hook", responses=problems(400, 413, 415, 422))
def subscribe(body: HookIn, caller: AdminCaller, db: DB, ctx: Context) -> HookOut:
    """Send events of one type to `target_url` as JSON arrays (admins only): Zapier's subscribe
    step. An event type or wildcard that matches no type of `GET /v1/event-types` (the answer names
    the nearest) or a URL that is not public is a 422."""
    unknown = event_types.check_pattern(body.event)
    if unknown is not None:
        raise ApiError(422, unknown[0].upper() + unknown[1:] + ".", code="unknown_event", field="event")
    check_target(ctx, body.target_url, "target_url")
    endpoint, _ = webhook_endpoints.create_endpoint(
        db,
        caller.organisation.id,
        body.target_url,
        box=ctx.box(),
        description=f"REST hook for {body.event}",
        event_types=[body.event],
        payload_format="array",
        kind="rest_hook",
    )
    db.commit()
    return HookOut.of(endpoint)


@router.get("", summary="List REST hooks", responses=problems(422))
def list_hooks(caller: AdminCaller, db: DB, paging: Paging) -> Page[HookOut]:
    """The organisation's REST hook subscriptions, by id (admins only)."""
    query = webhook_endpoints.select_endpoints(caller.organisation.id, kind="rest_hook")
    rows, cursor = fetch(db, query, KEYSET, paging)
    return page_of([HookOut.of(row) for row in rows], cursor)


@router.delete("/{hook_id}", status_code=204, summary="Unsubscribe a REST hook", responses=problems(404))
def unsubscribe(hook_id: HookId, caller: AdminCaller, db: DB) -> Response:
    """Delete a subscription (admins only): Zapier's unsubscribe step. Ids of endpoints made under
    /v1/webhooks are 404 here."""
    endpoint = webhook_endpoints.get_endpoint(db, caller.organisation.id, hook_id)
    if endpoint.kind is not EndpointKind.REST_HOOK:
        raise NotFound(f"no hook {hook_id}")
    webhook_endpoints.delete_endpoint(db, endpoint)
    db.commit()
    return Response(status_code=204)


@router.get("/samples/{event}", summary="Sample events for a REST hook", responses=problems(404))
def samples(
    event: Annotated[str, Path(max_length=64, description='An event type such as "booking.created", or a wildcard.')],
    caller: AdminCaller,
    db: DB,
) -> list[HookEvent]:
    """The organisation's latest events of this type, newest first, as hooks deliver them; one
    representative sample while there is none yet (admins only): Zapier's perform list. The sample is
    the example `GET /v1/event-types` shows."""
    types = event_types.matching(event)
    if not types:
        raise NotFound(f"{event!r} is not a known event type or wildcard")
    rows = db.scalars(_latest(caller.organisation.id, event).limit(SAMPLE_COUNT)).all()
    if not rows:
        example = event_types.CATALOG[types[0]].example
        return [HookEvent(id=SAMPLE_ID, type=types[0], timestamp=iso(utcnow()), data=example)]
    return [HookEvent(id=row.id, type=row.type, timestamp=iso(row.created_at), data=row.data) for row in rows]


def _latest(organisation_id: int, pattern: str) -> Select[OutboxEvent]:
    query = select_events(organisation_id).order_by(None).order_by(OutboxEvent.seq.desc())
    if pattern.endswith(".*"):
        return query.where(OutboxEvent.type.startswith(pattern[:-1], autoescape=True))
    if pattern != "*":
        return query.where(OutboxEvent.type == pattern)
    return query
