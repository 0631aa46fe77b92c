"""Webhooks (admins): endpoints, made with the event types the API knows; the signing secret revealed
and rotated; pause and resume; a test send; the deliveries log with every attempt; replays. The
event log, with filters, is here too: it is what webhooks carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast, get_args

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.console.auth import Admin, AdminPosted, Viewer
from api.console.pages import ConsoleRoute, done, render
from api.deps import DB, context
from api.v1.common import MAX_SEQ, ResourceId
from api.v1.endpoints.deliveries import DeliveryCursor, DeliveryStatus, list_deliveries
from api.v1.endpoints.webhooks import WebhookIn, check_target, send_test_event
from store import event_types
from store.columns import utcnow
from store.errors import Invalid
from store.models import OutboxEvent, WebhookEndpoint
from store.services import delivery_replays, events, webhook_endpoints, webhook_secrets

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)
LIST = "/console/admin/webhooks"
SHOWN_DELIVERIES = 50
SHOWN_EVENTS = 100
EVENT_TYPES = list(event_types.CATALOG)
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


@dataclass(frozen=True)
class Shown:
    """Which deliveries an endpoint's page lists: a status or an event, and a cursor either way."""

    status: str = ""
    event_id: str = ""
    before: int | None = None
    after: int | None = None


def _moment(text: str, viewer: Viewer, field: str) -> datetime:
    """A date and time typed in a form: in the organisation's time zone unless it names an offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid("Give the time as a date and time, such as 2030-01-31T09:00.", field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=viewer.zone)


@router.get("/webhooks")
def webhooks_page(request: Request, viewer: Admin, db: DB) -> HTMLResponse:
    """The organisation's endpoints and the form to add one."""
    rows = list(db.scalars(webhook_endpoints.select_endpoints(viewer.organisation.id).order_by(WebhookEndpoint.id)))
    return render(request, "webhooks.html", viewer, endpoints=rows, catalog=_families())


def _families() -> dict[str, list[event_types.EventType]]:
    """The event catalog by family (`booking`, …), in catalog order: what an endpoint subscribes to."""
    found: dict[str, list[event_types.EventType]] = {}
    for kind in event_types.CATALOG.values():
        found.setdefault(kind.name.split(".", 1)[0], []).append(kind)
    return found


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
    request: Request,
    viewer: Viewer,
    db: Session,
    endpoint: WebhookEndpoint,
    shown: Shown | None = None,
    **extra: Any,
) -> HTMLResponse:
    """The endpoint's page: its deliveries log is the API's own listing (GET …/deliveries), a page of it."""
    shown = shown or Shown()
    log = list_deliveries(
        endpoint,
        db,
        status=cast(DeliveryStatus | None, shown.status or None),  # the store refuses an unknown one
        event_id=shown.event_id or None,
        before=shown.before,
        after=shown.after,
        limit=SHOWN_DELIVERIES,
    )
    return render(
        request,
        "webhook.html",
        viewer,
        endpoint=endpoint,
        log=log,
        shown=shown,
        statuses=DELIVERY_STATUSES,
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
    event_id: Annotated[str, Query(max_length=40)] = "",
    before: DeliveryCursor = None,
    after: DeliveryCursor = None,
) -> HTMLResponse:
    """One endpoint with a page of its deliveries (newest first; of one status or one event) and
    their attempts, paged back and forth as the API pages them."""
    shown = Shown(status.strip(), event_id.strip(), before, after)
    return _detail(request, viewer, db, _endpoint(db, viewer, webhook_id), shown)


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
        context(request).jobs.deliver_backlog(resumed)
    return done(request, f"{LIST}/{webhook_id}", "Paused." if paused else "Resumed.")


@router.post("/webhooks/{webhook_id}/enable")
def enable(request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Turn a disabled endpoint back on and deliver its pending events."""
    pending = webhook_endpoints.enable_endpoint(db, _endpoint(db, viewer, webhook_id))
    db.commit()
    if pending:
        context(request).jobs.deliver_backlog(pending)
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
        context(request).jobs.deliver_backlog([delivery_id])
    return done(request, f"{LIST}/{webhook_id}", f"Event {event_id} queued again.")


@router.post("/webhooks/{webhook_id}/replay-failed")
def replay_failed(
    request: Request, webhook_id: ResourceId, viewer: AdminPosted, db: DB, since: Annotated[str, Form(max_length=40)]
) -> Response:
    """Send again every delivery given up on since a time (in the organisation's time zone)."""
    endpoint = _endpoint(db, viewer, webhook_id)
    delivery_ids = delivery_replays.replay_failed(db, endpoint, since=_moment(since, viewer, "since"), now=utcnow())
    paused = endpoint.paused
    db.commit()
    if delivery_ids and not paused:
        context(request).jobs.deliver_backlog(delivery_ids)
    return done(request, f"{LIST}/{webhook_id}", f"{len(delivery_ids)} failed delivery(ies) queued again.")


# --- the event log -----------------------------------------------------------------------------


@router.get("/events")
def events_page(
    request: Request,
    viewer: Admin,
    db: DB,
    type: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
) -> HTMLResponse:
    """The organisation's events, newest first: of one type or family (`booking.*`, the patterns
    webhooks subscribe with), since a time, a hundred at a time (`before`: older than that seq)."""
    query = events.select_events(viewer.organisation.id).order_by(None).order_by(OutboxEvent.seq.desc())
    wanted, since = type.strip(), since.strip()
    page: dict[str, Any] = {
        "families": [family + ".*" for family in _families()],
        "event_types": EVENT_TYPES,
        "type": wanted,
        "since": since,
    }
    if wanted:
        kinds = event_types.matching(wanted)
        if not kinds:  # the form comes back with the reason, as a refused form does
            near = event_types.nearest(wanted)
            problem = f"No event type matches {wanted}" + (f": did you mean {near}?" if near else ".")
            return render(request, "events.html", viewer, status_code=422, events=[], problem=problem, **page)
        query = query.where(OutboxEvent.type.in_(kinds))
    if since:
        query = query.where(OutboxEvent.created_at >= _moment(since, viewer, "since"))
    if before is not None:
        query = query.where(OutboxEvent.seq < before)
    rows = list(db.scalars(query.limit(SHOWN_EVENTS + 1)))
    older = rows[SHOWN_EVENTS - 1].seq if len(rows) > SHOWN_EVENTS else None
    return render(request, "events.html", viewer, events=rows[:SHOWN_EVENTS], before=before, older=older, **page)
