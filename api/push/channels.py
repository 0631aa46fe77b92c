"""What a verified notification sets off: a coalesced sync (of the directory, or of one person's calendar),
or a channel renewal."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from api.context import ApiContext
from connectors.push import Notification
from store.db import transaction
from store.models import PushChannel
from store.services import calendars, connections, push_channels

RESYNC_KINDS = frozenset({"change", "missed", "subscriptionRemoved"})


@dataclass(frozen=True)
class Outcome:
    genuine: bool
    sync_queued: bool = False
    calendars_queued: tuple[int, ...] = field(default=())


def act_on(ctx: ApiContext, connection_id: int, notifications: list[Notification]) -> Outcome:
    """Verify every notification against its channel; if all are genuine, ask for what they need.

    One forged item refuses the whole request: nothing is enqueued for it. A channel on a person's
    calendar (`calendar_id` set) asks for that calendar's sync; the connection's own, for the directory's.
    """
    with transaction(ctx.session_factory) as session:
        channels = [_genuine(session, connection_id, item) for item in notifications]
        verified = [(channel, item) for channel, item in zip(channels, notifications, strict=True) if channel]
        if len(verified) != len(notifications):
            return Outcome(genuine=False)
        directory = [item.kind for channel, item in verified if channel.calendar_id is None]
        by_calendar: dict[int, set[str]] = {}
        for channel, item in verified:
            if channel.calendar_id is not None:
                by_calendar.setdefault(channel.calendar_id, set()).add(item.kind)
        enqueue = bool(set(directory) & RESYNC_KINDS) and connections.request_sync(session, connection_id)
        wanted = tuple(
            calendar_id
            for calendar_id, kinds in sorted(by_calendar.items())
            if kinds & RESYNC_KINDS and calendars.request_sync(session, calendar_id)
        )
    if enqueue:
        ctx.jobs.sync_directory(connection_id)
    if "subscriptionRemoved" in directory:
        ctx.jobs.renew_directory_channels(connection_id, True)
    elif "reauthorizationRequired" in directory:
        ctx.jobs.renew_directory_channels(connection_id, False)
    if by_calendar:
        _calendar_work(ctx, connection_id, wanted, by_calendar)
    return Outcome(genuine=True, sync_queued=enqueue, calendars_queued=wanted)


def _calendar_work(
    ctx: ApiContext, connection_id: int, wanted: tuple[int, ...], by_calendar: dict[int, set[str]]
) -> None:
    ctx.jobs.sync_calendars(connection_id, list(wanted))  # the calendars of one request: a batch (or a few)
    for calendar_id, kinds in sorted(by_calendar.items()):
        if "subscriptionRemoved" in kinds:
            ctx.jobs.renew_calendar_channel(calendar_id, True)
        elif "reauthorizationRequired" in kinds:
            ctx.jobs.renew_calendar_channel(calendar_id, False)


def _genuine(session: Session, connection_id: int, item: Notification) -> PushChannel | None:
    channel = push_channels.verify(session, item.channel_id, item.secret, item.resource_id)
    return channel if channel is not None and channel.connection_id == connection_id else None
