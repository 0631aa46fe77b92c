"""Resource Guru webhooks: `POST /hooks/resourceguru/{connection_id}`.

The raw body is checked against `X-ResourceGuru-Signature` (hex HMAC-SHA256 with the connection's
webhook secret, compared in constant time) before anything else: a missing, wrong or forged
signature, or a connection without a secret, is refused with 401 and nothing is stored. A genuine
delivery is kept by its envelope id and acknowledged with 202 at once; the worker applies it
(worker/peers/hooks.py). A replay of an envelope already kept is acknowledged and queues nothing.
"""

from __future__ import annotations

import json
import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext
from api.deps import context
from connectors.resourceguru import SIGNATURE_HEADER, verify
from connectors.resourceguru.webhooks import MAX_BODY
from store.db import transaction
from store.services import peer_envelopes

router = APIRouter(prefix="/hooks/resourceguru", tags=["hooks"], include_in_schema=False)
# Checked against when the connection has no secret, so refusing takes as long either way.
_NO_SECRET = secrets.token_hex(32)


@router.post("/{connection_id}")
async def deliver(connection_id: int, request: Request) -> Response:
    """A delivery from Resource Guru: 202 when genuine (kept once), 401 when not, 400 when it has no envelope id."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return PlainTextResponse("delivery too large", status_code=413)
    signature = request.headers.get(SIGNATURE_HEADER)
    return await run_in_threadpool(_receive, context(request), connection_id, body, signature)


def _receive(ctx: ApiContext, connection_id: int, body: bytes, signature: str | None) -> Response:
    if ctx.secret_box is None:
        raise RuntimeError("ApiContext.secret_box is not set: webhooks need it (see deskbridge.wiring)")
    with transaction(ctx.session_factory) as session:
        secret = peer_envelopes.webhook_secret(session, ctx.secret_box, connection_id)
        if not verify(secret or _NO_SECRET, body, signature) or secret is None:
            return PlainTextResponse("unknown connection or wrong signature", status_code=401)
        head = _head(body)
        if head is None:
            return PlainTextResponse("not a Resource Guru envelope (no id)", status_code=400)
        envelope_id, subject = head
        row_id = peer_envelopes.receive(session, connection_id, envelope_id, body.decode("utf-8", "replace"), subject)
    if row_id is not None:
        _enqueue(row_id)
    return Response(status_code=202)


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


def _enqueue(row_id: int) -> None:
    # Imported here: actors are declared on the broker the composition root sets before serving.
    from worker.peers import hooks

    hooks.enqueue(row_id)
