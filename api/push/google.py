"""Google push channel notifications (Admin SDK users.watch) for a connection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.deps import context
from api.push.channels import act_on
from connectors.google.notifications import parse_notification
from store.columns import MAX_KEY

# Beyond the key range no connection exists: refused (422) before any query.
ConnectionId = Annotated[int, Path(ge=1, le=MAX_KEY)]

router = APIRouter(prefix="/google")


@router.post("/{connection_id}")
async def notify(connection_id: ConnectionId, request: Request) -> Response:
    """A channel message: the opening `sync` (acknowledged, nothing to do) or a change (one coalesced sync)."""
    try:
        notification = parse_notification(request.headers)
    except ValueError as error:
        return PlainTextResponse(str(error), status_code=400)
    outcome = await run_in_threadpool(act_on, context(request), connection_id, [notification])
    if not outcome.genuine:
        return PlainTextResponse("unknown channel or wrong token", status_code=401)
    return Response(status_code=204)
