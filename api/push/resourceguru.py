"""Resource Guru webhooks: `POST /hooks/resourceguru/{connection_id}`.

The raw body is checked against `X-ResourceGuru-Signature` (hex HMAC-SHA256 with the connection's
webhook secret, compared in constant time) before anything else: a missing, wrong or forged
signature, or a connection without a secret, is refused with 401 and nothing is stored. A genuine
delivery is kept by its envelope id and acknowledged with 202; the worker is asked to apply its
connection's waiting deliveries (`Jobs.apply_peer_deliveries`; worker/peers/hooks.py: one waiting
job per connection, however many arrive). A replay of an envelope already kept is acknowledged and asks for nothing.

Acknowledging fast is the point (Resource Guru waits on us): the secret is read from the store once
and kept in the process (kept_secrets.py), and deliveries are written a batch at a time
(kept_deliveries.py), so a burst costs a commit per batch, not per delivery.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.context import ApiContext
from api.deps import context
from api.push.kept_deliveries import KeptDeliveries
from api.push.kept_secrets import Secrets
from connectors.resourceguru import SIGNATURE_HEADER
from connectors.resourceguru.webhooks import MAX_BODY
from store.columns import MAX_KEY
from store.db import transaction
from store.services import peer_envelopes
from store.services.peer_envelopes import Received


async def deliver(request: Request) -> Response:
    """A delivery from Resource Guru: 202 when genuine (kept once), 401 when not, 400 when it has no envelope id."""
    connection_id: int = request.path_params["connection_id"]
    if not 1 <= connection_id <= MAX_KEY:  # no such connection, and the database could not be asked
        return _refused()
    body = await request.body()
    if len(body) > MAX_BODY:
        return PlainTextResponse("delivery too large", status_code=413)
    ctx = context(request)
    known = _secrets(request, ctx)
    if not await known.check(connection_id, body, request.headers.get(SIGNATURE_HEADER)):
        return _refused()
    head = _head(body)
    if head is None:
        return PlainTextResponse("not a Resource Guru envelope (no id)", status_code=400)
    envelope_id, subject = head
    delivery = Received(connection_id, envelope_id, body.decode("utf-8", "replace"), subject)
    if await _deliveries(request, ctx).keep(delivery) is None:
        known.forget(connection_id)  # deleted since its secret was read
        return _refused()
    return Response(status_code=202)


def _secrets(request: Request, ctx: ApiContext) -> Secrets:
    """The app's kept secrets (one set per app, made on first use)."""
    known: Secrets | None = getattr(request.app.state, "resourceguru_secrets", None)
    if known is None:
        box = ctx.secret_box
        if box is None:
            raise RuntimeError("ApiContext.secret_box is not set: webhooks need it (see deskbridge.wiring)")

        def read(connection_id: int) -> str | None:
            with transaction(ctx.session_factory) as session:
                return peer_envelopes.webhook_secret(session, box, connection_id)

        known = request.app.state.resourceguru_secrets = Secrets(read)
    return known


def _deliveries(request: Request, ctx: ApiContext) -> KeptDeliveries:
    """The app's batches of deliveries being written (made on first use)."""
    kept: KeptDeliveries | None = getattr(request.app.state, "resourceguru_deliveries", None)
    if kept is None:
        kept = request.app.state.resourceguru_deliveries = KeptDeliveries(
            ctx.session_factory, ctx.jobs.apply_peer_deliveries
        )
    return kept


def _refused() -> Response:
    return PlainTextResponse("unknown connection or wrong signature", status_code=401)


def _head(body: bytes) -> tuple[int, str] | None:
    """The envelope's id and what it is about ("booking:12", "" when unsaid), the only things read here:
    the worker reads the rest (against who is who)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return None
    payload = data.get("payload")
    kind, object_id = (payload.get("type"), payload.get("id")) if isinstance(payload, dict) else (None, None)
    subject = f"{kind}:{object_id}" if isinstance(kind, str) and isinstance(object_id, int) else ""
    return value, subject


# A plain Starlette route: nothing for FastAPI to validate or inject, and the sender waits on it.
route = Route("/hooks/resourceguru/{connection_id:int}", deliver, methods=["POST"], include_in_schema=False)
