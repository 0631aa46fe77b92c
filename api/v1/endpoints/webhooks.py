"""Outgoing webhook endpoints (admins): subscribe URLs to events, manage signing secrets, send a test.

The signing secret is shown when an endpoint is made, by an explicit reveal and by a rotation; never
in the endpoint itself, in lists or in events. Deliveries and replays are in `deliveries.py`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from api.context import ApiContext
from api.deps import DB, AdminCaller, context
from api.errors import ApiError
from api.v1.common import PatchBody, RequestBody, Resource, Timestamp, path_id, problems
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from connectors import outbound
from connectors.outbound import UnsafeURL
from store.columns import utcnow
from store.models import WebhookEndpoint
from store.services import webhook_endpoints, webhook_secrets
from store.services.webhook_endpoints import WEBHOOK_URL

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Context = Annotated[ApiContext, Depends(context)]
KEYSET = Keyset("webhooks", (WebhookEndpoint.id,))
WebhookId = Annotated[int, path_id("The webhook endpoint's id.")]
Url = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=webhook_endpoints.MAX_URL_LENGTH)
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=webhook_endpoints.MAX_DESCRIPTION_LENGTH)
]
EventPattern = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
EventTypes = Annotated[
    list[EventPattern],
    Field(
        max_length=webhook_endpoints.MAX_PATTERNS,
        description='Exact types ("booking.created"), wildcards ("booking.*") or "*"; empty means every event.',
    ),
]
PayloadFormat = Literal["event", "array"]
Signature = Literal["hmac", "ed25519"]
RateLimit = Annotated[
    int,
    Field(ge=1, le=webhook_endpoints.MAX_RATE_LIMIT, description="Requests a second at most, across every worker."),
]
EndpointKind = Literal["webhook", "rest_hook"]
NO_STORE = {"Cache-Control": "no-store"}


# --- shared with the REST hooks ----------------------------------------------------------------


def check_target(ctx: ApiContext, url: str, field: str) -> None:
    """Refuse, as a 422 on `field`, a URL the SSRF guard would not let webhooks call."""
    try:
        outbound.check_url(url, allow_private=ctx.allow_private_webhooks, what=WEBHOOK_URL)
    except UnsafeURL as error:
        raise ApiError(422, f"This URL cannot receive webhooks: {error}.", code="unsafe_url", field=field) from None


def get_endpoint(db: DB, caller: AdminCaller, webhook_id: WebhookId) -> WebhookEndpoint:
    """The caller's organisation's endpoint from the path; another organisation's id is a 404."""
    return webhook_endpoints.get_endpoint(db, caller.organisation.id, webhook_id)


Endpoint = Annotated[WebhookEndpoint, Depends(get_endpoint)]


# --- models ------------------------------------------------------------------------------------


class WebhookOut(Resource):
    """An endpoint events are POSTed to. Its signing secret is never part of it."""

    id: int
    kind: EndpointKind = Field(description="webhook (made here) or rest_hook (a subscription under /v1/hooks).")
    url: str
    description: str
    event_types: list[str] = Field(description="The patterns it subscribes to; empty means every event.")
    payload_format: PayloadFormat = Field(description="event: one object a request; array: a JSON array of them.")
    paused: bool = Field(description="A paused endpoint's events wait and are delivered, in order, when resumed.")
    disabled_at: Timestamp | None = Field(description="Set when deliveries stopped (410 Gone, or 5 days failing).")
    disabled_reason: str | None = Field(description="gone or failing; null while enabled.")
    failing_since: Timestamp | None = Field(description="The first failed attempt since the last success.")
    ordered: bool = Field(
        description="Delivered one request at a time in event order; a failing delivery holds the later ones back."
    )
    rate_limit_per_second: int | None = Field(description="At most this many requests a second; null: no limit.")
    signature: Signature = Field(
        description="hmac: Standard Webhooks v1 with the whsec_ secret; ed25519: v1a, verified with `public_key`."
    )
    public_key: str | None = Field(description="whpk_ and base64: the ed25519 key that verifies v1a signatures.")
    created_at: Timestamp
    updated_at: Timestamp


class WebhookCreated(WebhookOut):
    """A new endpoint with its signing secret: keep it now (reveal it later with GET …/secret)."""

    secret: str = Field(description="The Standard Webhooks signing secret, whsec_ and base64.")


class WebhookIn(RequestBody):
    """A URL and the events it wants."""

    url: Url = Field(description="Where to POST; must be a public http(s) URL.")
    description: Description = ""
    event_types: EventTypes = Field(default_factory=list)
    payload_format: PayloadFormat = "event"
    paused: bool = False
    ordered: bool = False
    rate_limit_per_second: RateLimit | None = None
    signature: Signature = "hmac"


class WebhookPatch(PatchBody):
    """The fields to change; leave a field out to keep it. `paused: false` resumes delivery."""

    nullable: ClassVar[frozenset[str]] = frozenset({"rate_limit_per_second"})

    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    payload_format: PayloadFormat | None = None
    paused: bool | None = None
    ordered: bool | None = None
    rate_limit_per_second: RateLimit | None = Field(default=None, description="null removes the limit.")
    signature: Signature | None = None


class SecretOut(BaseModel):
    """An endpoint's current signing secret."""

    secret: str = Field(description="whsec_ and base64; verify signatures with it.")


class RotatedSecretOut(SecretOut):
    """The new signing secret; the previous one keeps signing, beside it, for 24 hours."""

    previous_valid_until: Timestamp = Field(description="Until when requests are also signed with the old secret.")


class SendOutcome(BaseModel):
    """What the receiver answered to the test event."""

    success: bool = Field(description="Whether it answered 2xx.")
    status_code: int | None = Field(description="Null when no answer came (refused, timed out, connection error).")
    duration_ms: int
    response_excerpt: str = Field(description="The start of the answer's body (at most 1 KiB).")
    error: str | None = Field(description="Why no answer came, or that a redirect was not followed.")


# --- routes ------------------------------------------------------------------------------------


@router.post("", status_code=201, summary="Create a webhook endpoint", responses=problems(400, 413, 415, 422))
def create_webhook(body: WebhookIn, response: Response, caller: AdminCaller, db: DB, ctx: Context) -> WebhookCreated:
    """Subscribe a URL to events (admins only). The answer holds the signing secret; a URL that is
    not public (loopback, private, link-local, metadata) is a 422 on `url`."""
    check_target(ctx, body.url, "url")
    endpoint, secret = webhook_endpoints.create_endpoint(
        db,
        caller.organisation.id,
        body.url,
        box=ctx.box(),
        description=body.description,
        event_types=body.event_types,
        payload_format=body.payload_format,
        paused=body.paused,
        ordered=body.ordered,
        rate_limit_per_second=body.rate_limit_per_second,
        signature=body.signature,
    )
    db.commit()
    response.headers["Location"] = f"/v1/webhooks/{endpoint.id}"
    response.headers.update(NO_STORE)
    return WebhookCreated.model_validate({**WebhookOut.model_validate(endpoint).model_dump(), "secret": secret})


@router.get("", summary="List webhook endpoints", responses=problems(422))
def list_webhooks(
    caller: AdminCaller,
    db: DB,
    paging: Paging,
    kind: Annotated[EndpointKind | None, Query(description="Only endpoints of this kind.")] = None,
) -> Page[WebhookOut]:
    """The organisation's endpoints, REST hooks included, by id (admins only)."""
    rows, cursor = fetch(db, webhook_endpoints.select_endpoints(caller.organisation.id, kind=kind), KEYSET, paging)
    return page_of([WebhookOut.model_validate(row) for row in rows], cursor)


@router.get("/{webhook_id}", summary="Get a webhook endpoint", responses=problems(404))
def get_webhook(endpoint: Endpoint) -> WebhookOut:
    """One endpoint, with whether it is paused, disabled or failing (admins only)."""
    return WebhookOut.model_validate(endpoint)


@router.patch("/{webhook_id}", summary="Update a webhook endpoint", responses=problems(400, 404, 413, 415, 422))
def update_webhook(body: WebhookPatch, endpoint: Endpoint, db: DB, ctx: Context) -> WebhookOut:
    """Change an endpoint (admins only). Resuming it (`paused: false`) delivers the events kept
    meanwhile, in order. A new URL is checked as at creation."""
    if body.url is not None:
        check_target(ctx, body.url, "url")
    changes = body.model_dump(exclude_unset=True)
    _, resumed = webhook_endpoints.update_endpoint(db, endpoint, **changes, box=ctx.box())
    db.commit()
    if resumed:
        ctx.jobs.deliver_backlog(resumed)
    return WebhookOut.model_validate(endpoint)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook endpoint", responses=problems(404))
def delete_webhook(endpoint: Endpoint, db: DB) -> Response:
    """Delete an endpoint with its deliveries log (admins only); nothing more is sent to it."""
    webhook_endpoints.delete_endpoint(db, endpoint)
    db.commit()
    return Response(status_code=204)


@router.post("/{webhook_id}/enable", summary="Re-enable a webhook endpoint", responses=problems(404))
def enable_webhook(endpoint: Endpoint, db: DB, ctx: Context) -> WebhookOut:
    """Turn a disabled endpoint back on (admins only) and deliver its pending events, in order.
    Deliveries given up meanwhile stay so: replay them with `deliveries/replay-failed`."""
    pending = webhook_endpoints.enable_endpoint(db, endpoint)
    db.commit()
    if pending:
        ctx.jobs.deliver_backlog(pending)
    return WebhookOut.model_validate(endpoint)


@router.get("/{webhook_id}/secret", summary="Reveal the signing secret", responses=problems(404))
def reveal_secret(endpoint: Endpoint, response: Response, ctx: Context) -> SecretOut:
    """The endpoint's current HMAC signing secret (admins only). An ed25519 endpoint signs with its key
    pair instead: receivers verify with its `public_key`; the private key is never shown."""
    response.headers.update(NO_STORE)
    return SecretOut(secret=webhook_secrets.reveal_secret(endpoint, ctx.box()))


@router.post("/{webhook_id}/secret/rotate", summary="Rotate the signing secret", responses=problems(404))
def rotate_secret(endpoint: Endpoint, response: Response, db: DB, ctx: Context) -> RotatedSecretOut:
    """Make a new signing secret (admins only). Requests are signed with both the new and the old
    one for 24 hours, so receivers can switch without missing a request; a secret still in its grace
    period from an earlier rotation stops at once."""
    secret = webhook_secrets.rotate_secret(db, endpoint, ctx.box(), utcnow())
    expires_at = endpoint.previous_secret_expires_at
    db.commit()
    assert expires_at is not None  # a rotation always sets it
    response.headers.update(NO_STORE)
    return RotatedSecretOut(secret=secret, previous_valid_until=expires_at)


@router.post("/{webhook_id}/test", summary="Send a test event", responses=problems(404))
def send_test_event(endpoint: Endpoint, ctx: Context) -> SendOutcome:
    """Send a `webhook.test` event to the endpoint now, signed and shaped as real deliveries are,
    and return what the receiver answered (admins only). Nothing is stored or retried; paused and
    disabled endpoints get it too."""
    secrets = webhook_secrets.signing_secrets(endpoint, ctx.box(), utcnow())
    sent = ctx.jobs.send_test_event(endpoint.url, endpoint.payload_format, secrets, endpoint.id)
    return SendOutcome(
        success=sent.success,
        status_code=sent.status_code,
        duration_ms=sent.duration_ms,
        response_excerpt=sent.response_excerpt,
        error=sent.error,
    )
