"""Webhooks (admins): endpoints, made with the event types the API knows; the signing secret revealed
and rotated; pause and resume; a test send; the deliveries log with every attempt; replays. The
event log, with filters, is here too: it is what webhooks carry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.console.auth import Admin, AdminPosted, Viewer
from api.console.pages import ConsoleRoute, done, render
from api.deps import DB, context
from api.v1.common import ResourceId
from api.v1.endpoints.webhooks import WebhookIn, check_target, send_test_event
from store import event_types
from store.columns import utcnow
from store.errors import Invalid
from store.models import Delivery, OutboxEvent, WebhookEndpoint
from store.services import deliveries, delivery_replays, events, webhook_endpoints, webhook_secrets

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)
LIST = "/console/admin/webhooks"
SHOWN_DELIVERIES = 50
SHOWN_EVENTS = 100
EVENT_TYPES = list(event_types.CATALOG)


@router.get("/webhooks")
def webhooks_page(request: Request, viewer: Admin, db: DB) -> HTMLResponse:
    """The organisation's endpoints and the form to add one."""
    rows = list(db.scalars(webhook_endpoints.select_endpoints(viewer.organisation.id).order_by(WebhookEndpoint.id)))
    return render(request, "webhooks.html", viewer, endpoints=rows, event_types=EVENT_TYPES)


@router.post("/webhooks")
def create_webhook(
    request: Request,
    viewer: AdminPosted,
    db: DB,
    url: Annotated[str, Form(max_length=webhook_endpoints.MAX_URL_LENGTH)],
    description: Annotated[str, Form(max_length=webhook_endpoints.MAX_DESCRIPTION_LENGTH)] = "",
    event_types: Annotated[list[str] | None, Form()] = None,
    payload_format: Annotated[str, Form(max_length=16)] = "event",
) -> HTMLResponse:
    """Subscribe a URL (checked as the API checks it); its signing secret is on this answer only."""
    ctx = context(request)
    body = WebhookIn.model_validate(
        {"url": url, "description": description, "event_types": event_types or [], "payload_format": payload_format}
    )
    check_target(ctx, body.url, "url")
    endpoint, secret = webhook_endpoints.create_endpoint(
        db,
        viewer.organisation.id,
        body.url,
        box=ctx.box(),
        description=body.description,
        event_types=body.event_types,
        payload_format=body.payload_format,
    )
    db.commit()
    return _detail(request, viewer, db, endpoint, shown_secret=secret, shown_note="Keep this signing secret now.")


def _detail(
    request: Request, viewer: Viewer, db: Session, endpoint: WebhookEndpoint, status: str = "", **extra: Any
) -> HTMLResponse:
    query = deliveries.select_deliveries(
        viewer.organisation.id, endpoint_id=endpoint.id, status=status or None
    ).order_by(Delivery.id.desc())
    rows = list(db.scalars(query.limit(SHOWN_DELIVERIES)))
    attempts = deliveries.attempts_of(db, [row.id for row in rows])
    query_types = select(OutboxEvent.id, OutboxEvent.type).where(OutboxEvent.id.in_({row.event_id for row in rows}))
    types = {event_id: event_type for event_id, event_type in db.execute(query_types)}
    return render(
        request,
        "webhook.html",
        viewer,
        endpoint=endpoint,
        deliveries=rows,
        attempts=attempts,
        types=types,
        status=status,
        no_store="shown_secret" in extra,
        **extra,
    )


def _endpoint(db: Session, viewer: Viewer, webhook_id: int) -> WebhookEndpoint:
    return webhook_endpoints.get_endpoint(db, viewer.organisation.id, webhook_id)


@router.get("/webhooks/{webhook_id}")
def webhook_page(
    request: Request,
    webhook_id: ResourceId,
    viewer: Admin,
    db: DB,
    status: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """One endpoint with its deliveries (the latest 50, optionally of one status) and their attempts."""
    return _detail(request, viewer, db, _endpoint(db, viewer, webhook_id), status)


@router.post("/webhooks/{webhook_id}/secret")
def reveal_secret(request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB) -> HTMLResponse:
    """Show the current signing secret."""
    endpoint = _endpoint(db, viewer, webhook_id)
    secret = webhook_secrets.reveal_secret(endpoint, context(request).box())
    return _detail(request, viewer, db, endpoint, shown_secret=secret, shown_note="The current signing secret.")


@router.post("/webhooks/{webhook_id}/secret/rotate")
def rotate_secret(request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB) -> HTMLResponse:
    """A new signing secret; the old one keeps signing beside it for 24 hours."""
    endpoint = _endpoint(db, viewer, webhook_id)
    secret = webhook_secrets.rotate_secret(db, endpoint, context(request).box(), utcnow())
    db.commit()
    note = "The new signing secret. The previous one also signs until "
    until = endpoint.previous_secret_expires_at
    note += f"{until.astimezone(viewer.zone):%d %b %Y %H:%M}." if until else "tomorrow."
    return _detail(request, viewer, db, endpoint, shown_secret=secret, shown_note=note)


@router.post("/webhooks/{webhook_id}/pause")
def pause(
    request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB, paused: Annotated[bool, Form()] = False
) -> Response:
    """Pause (events wait) or resume (they go out, in order)."""
    endpoint = _endpoint(db, viewer, webhook_id)
    _, resumed = webhook_endpoints.update_endpoint(db, endpoint, paused=paused)
    db.commit()
    if resumed:
        context(request).enqueue_backlog(resumed)
    return done(request, f"{LIST}/{webhook_id}", "Paused." if paused else "Resumed.")


@router.post("/webhooks/{webhook_id}/enable")
def enable(request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Turn a disabled endpoint back on and deliver its pending events."""
    pending = webhook_endpoints.enable_endpoint(db, _endpoint(db, viewer, webhook_id))
    db.commit()
    if pending:
        context(request).enqueue_backlog(pending)
    return done(request, f"{LIST}/{webhook_id}", "Enabled again.")


@router.post("/webhooks/{webhook_id}/delete")
def delete(request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Delete the endpoint with its deliveries log."""
    webhook_endpoints.delete_endpoint(db, _endpoint(db, viewer, webhook_id))
    db.commit()
    return done(request, LIST, "Endpoint deleted.")


@router.post("/webhooks/{webhook_id}/test")
def send_test(request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB) -> HTMLResponse:
    """Send a signed webhook.test event now and show what the receiver answered (nothing is stored)."""
    endpoint = _endpoint(db, viewer, webhook_id)
    sent = send_test_event(endpoint, context(request))
    return _detail(request, viewer, db, endpoint, test=sent)


@router.post("/webhooks/{webhook_id}/replay")
def replay_one(
    request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB, event_id: Annotated[str, Form(max_length=40)]
) -> Response:
    """Send one event to the endpoint again."""
    endpoint = _endpoint(db, viewer, webhook_id)
    delivery_id = delivery_replays.replay_event(db, endpoint, event_id.strip(), now=utcnow())
    paused = endpoint.paused
    db.commit()
    if not paused:
        context(request).enqueue_backlog([delivery_id])
    return done(request, f"{LIST}/{webhook_id}", f"Event {event_id} queued again.")


@router.post("/webhooks/{webhook_id}/replay-failed")
def replay_failed(
    request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB, since: Annotated[str, Form(max_length=40)]
) -> Response:
    """Send again every delivery given up on since a time (in the organisation's time zone)."""
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise Invalid("Give the time as a date and time, such as 2030-01-31T09:00.", field="since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=viewer.zone)
    endpoint = _endpoint(db, viewer, webhook_id)
    delivery_ids = delivery_replays.replay_failed(db, endpoint, since=moment, now=utcnow())
    paused = endpoint.paused
    db.commit()
    if delivery_ids and not paused:
        context(request).enqueue_backlog(delivery_ids)
    return done(request, f"{LIST}/{webhook_id}", f"{len(delivery_ids)} failed delivery(ies) queued again.")


# --- the event log -----------------------------------------------------------------------------


@router.get("/events")
def events_page(
    request: Request,
    viewer: Admin,
    db: DB,
    type: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """The organisation's events, newest first: of one type or family ("booking."), since a time."""
    query = events.select_events(viewer.organisation.id)
    wanted = type.strip()
    if wanted:
        pattern = wanted[:-1] if wanted.endswith("*") else wanted
        query = query.where(
            OutboxEvent.type.startswith(pattern, autoescape=True)
            if wanted.endswith(("*", "."))
            else OutboxEvent.type == wanted
        )
    if since.strip():
        try:
            moment = datetime.fromisoformat(since.strip())
        except ValueError:
            raise Invalid("Give the time as a date and time, such as 2030-01-31T09:00.", field="since") from None
        query = query.where(OutboxEvent.created_at >= (moment if moment.tzinfo else moment.replace(tzinfo=viewer.zone)))
    rows = list(db.scalars(query.order_by(None).order_by(OutboxEvent.seq.desc()).limit(SHOWN_EVENTS)))
    return render(
        request, "events.html", viewer, events=rows, event_types=EVENT_TYPES, type=wanted, since=since.strip()
    )
