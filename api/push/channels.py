"""What a verified notification sets off: a coalesced sync, or a channel renewal."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.context import ApiContext
from connectors.push import Notification
from store.db import transaction
from store.services import connections

RESYNC_KINDS = frozenset({"change", "missed", "subscriptionRemoved"})


@dataclass(frozen=True)
class Outcome:
    genuine: bool
    sync_queued: bool = False


def act_on(ctx: ApiContext, connection_id: int, notifications: list[Notification]) -> Outcome:
    """Verify every notification against its channel; if all are genuine, ask for what they need.

    One forged item refuses the whole request: nothing is enqueued for it.
    """
    with transaction(ctx.session_factory) as session:
        if not all(_genuine(session, connection_id, item) for item in notifications):
            return Outcome(genuine=False)
        kinds = {item.kind for item in notifications}
        enqueue = bool(kinds & RESYNC_KINDS) and connections.request_sync(session, connection_id)
    if enqueue:
        ctx.enqueue_sync(connection_id)
    if "subscriptionRemoved" in kinds:
        ctx.enqueue_channels(connection_id, True)
    elif "reauthorizationRequired" in kinds:
        ctx.enqueue_channels(connection_id, False)
    return Outcome(genuine=True, sync_queued=enqueue)


def _genuine(session: Session, connection_id: int, item: Notification) -> bool:
    channel = connections.verify_channel(session, item.channel_id, item.secret, item.resource_id)
    return channel is not None and channel.connection_id == connection_id
