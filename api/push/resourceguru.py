"""Resource Guru webhooks: `POST /hooks/resourceguru/{connection_id}`.

The raw body is checked against `X-ResourceGuru-Signature` (hex HMAC-SHA256 with the connection's
webhook secret, compared in constant time) before anything else: a missing, wrong or forged
signature, or a connection without a secret, is refused with 401 and nothing is stored. A genuine
delivery is kept by its envelope id in one statement and acknowledged with 202; the worker is asked
to apply its connection's waiting deliveries (worker/peers/hooks.py: one waiting job per connection,
however many arrive). A replay of an envelope already kept is acknowledged and asks for nothing.

Acknowledging fast is the point (Resource Guru waits on us): the secret is read from the store once
and kept in the process (`Secrets`), so a delivery costs one INSERT and one enqueue.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext
from api.deps import context
from connectors.resourceguru import SIGNATURE_HEADER, verify
from connectors.resourceguru.webhooks import MAX_BODY
from store.db import transaction
from store.services import peer_envelopes

router = APIRouter(prefix="/hooks/resourceguru", tags=["hooks"], include_in_schema=False)

# A secret changed or removed (or its connection deleted) stops being accepted within this long.
KEEP_SECONDS = 30.0
# A signature that fails against a kept secret reads it again (it may have been changed), at most
# this often per connection, so a flood of forged deliveries costs no more store reads than this.
RECHECK_SECONDS = 5.0
MAX_KEPT = 10_000  # connections whose secret (or lack of one) is kept; the ids come from the URL
# Checked against when the connection has no secret, so refusing takes as long either way.
_NO_SECRET = secrets.token_hex(32)


@dataclass(frozen=True, slots=True)
class _Kept:
    secret: str | None
    read_at: float


class Secrets:
    """Each connection's webhook secret, read from the store and kept `KEEP_SECONDS` in this process."""

    def __init__(self, read: Callable[[int], str | None], clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._clock = clock
        self._kept: dict[int, _Kept] = {}

    async def check(self, connection_id: int, body: bytes, signature: str | None) -> bool:
        """Whether `signature` signs `body` under the connection's secret (False without one)."""
        kept = self._kept.get(connection_id)
        if kept is None or self._stale(kept, KEEP_SECONDS):
            kept = await self._reread(connection_id)
        if _verifies(kept, body, signature):
            return True
        if not self._stale(kept, RECHECK_SECONDS):
            return False
        return _verifies(await self._reread(connection_id), body, signature)

    def forget(self, connection_id: int) -> None:
        """Read the connection's secret again next time (it was found gone)."""
        self._kept.pop(connection_id, None)

    def _stale(self, kept: _Kept, seconds: float) -> bool:
        return self._clock() - kept.read_at > seconds

    async def _reread(self, connection_id: int) -> _Kept:
        kept = _Kept(await run_in_threadpool(self._read, connection_id), self._clock())
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[connection_id] = kept
        return kept


def _verifies(kept: _Kept, body: bytes, signature: str | None) -> bool:
    return verify(kept.secret or _NO_SECRET, body, signature) and kept.secret is not None


@router.post("/{connection_id}")
async def deliver(connection_id: int, request: Request) -> Response:
    """A delivery from Resource Guru: 202 when genuine (kept once), 401 when not, 400 when it has no envelope id."""
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
    if not await run_in_threadpool(_keep, ctx, connection_id, head, body):
        known.forget(connection_id)
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


def _refused() -> Response:
    return PlainTextResponse("unknown connection or wrong signature", status_code=401)


def _keep(ctx: ApiContext, connection_id: int, head: tuple[int, str], body: bytes) -> bool:
    """Keep the delivery and queue it when it is new; False when its connection is gone meanwhile."""
    envelope_id, subject = head
    try:
        with transaction(ctx.session_factory) as session:
            row_id = peer_envelopes.receive(
                session, connection_id, envelope_id, body.decode("utf-8", "replace"), subject
            )
    except IntegrityError:
        return False
    if row_id is not None:
        _enqueue(connection_id)
    return True


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


def _enqueue(connection_id: int) -> None:
    # Imported here: actors are declared on the broker the composition root sets before serving.
    from worker.peers import hooks

    hooks.enqueue(connection_id)
