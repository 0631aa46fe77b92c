"""The `/v1` API: one module per resource under endpoints/."""

from __future__ import annotations

from fastapi import APIRouter

from api.v1.common import problems
from api.v1.endpoints import (
    bookings,
    connections,
    deliveries,
    desks,
    events,
    external_events,
    feeds,
    hooks,
    invitations,
    members,
    organisation,
    plans,
    teams,
    tokens,
    webhooks,
)

router = APIRouter(prefix="/v1")

# Every route behind a token can answer these (422: its path, query or body is invalid).
_AUTHENTICATED = problems(401, 403, 422, 429)

for resource in (
    organisation,
    members,
    invitations,
    teams,
    desks,
    bookings,
    tokens,
    events,
    webhooks,
    deliveries,
    hooks,
    connections,
    plans,
    external_events,
    feeds,
):
    router.include_router(resource.router, responses=_AUTHENTICATED)
router.include_router(deliveries.events_router, responses=_AUTHENTICATED)
router.include_router(events.types_router, responses=_AUTHENTICATED)
router.include_router(invitations.public_router)
router.include_router(feeds.public_router)
