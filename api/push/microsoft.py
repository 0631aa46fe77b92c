"""Microsoft Graph change and lifecycle notifications for a connection's subscriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.deps import context
from api.push.channels import act_on
from connectors.microsoft.notifications import parse_notifications
from store.columns import MAX_KEY

# Beyond the key range no connection exists: refused (422) before any query.
ConnectionId = Annotated[int, Path(ge=1, le=MAX_KEY)]

router = APIRouter(prefix="/microsoft")


@router.post("/{connection_id}")
@router.post("/{connection_id}/lifecycle")
async def notify(connection_id: ConnectionId, request: Request, validationToken: str | None = None) -> Response:  # noqa: N803
    """Graph's validation handshake (echo the token as plain text), or a batch of notifications (202)."""
    if validationToken is not None:
        # Graph waits at most 10 seconds and wants the token back, decoded, as text/plain.
        return PlainTextResponse(validationToken)
    try:
        notifications = parse_notifications(await request.body())
    except ValueError as error:
        return PlainTextResponse(f"not a Graph notification: {error}", status_code=400)
    outcome = await run_in_threadpool(act_on, context(request), connection_id, notifications)
    if not outcome.genuine:
        return PlainTextResponse("unknown subscription or wrong clientState", status_code=401)
    return Response(status_code=202)
