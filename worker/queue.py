"""The queue as senders see it: every actor's name, and the actors bound to this process's broker.

Actors are declared once, in `worker/actors.py` (name, queue, retries, limits, body), and bound to the
broker the composition root builds when the runtime starts (`actors.bind`), never at import: nothing
here depends on a global broker or on the order modules are imported in. Senders name the actor
(`ActorName`) and send through the bound table (`Queue.send`), which the runtime carries
(`Runtime.queue`); they never import the actors' module, so the bodies may import any sender.

The names are what messages in Redis carry: renaming one strands the messages already queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import dramatiq


class ActorName(StrEnum):
    """Every actor's name (one declaration each in `worker.actors.DECLARED`)."""

    SEND_INVITATION_EMAIL = "send_invitation_email"
    SEND_INVITATION_EMAILS = "send_invitation_emails"
    SEND_SIGN_IN_EMAIL = "send_sign_in_email"
    DELIVER_WEBHOOKS = "deliver_webhooks"
    DELIVER_IN_ORDER = "deliver_in_order"
    DELIVER_WEBHOOK = "deliver_webhook"  # what earlier versions queued; declared so their jobs still run
    RELAY_OUTBOX = "relay_outbox"
    SYNC_CONNECTION = "sync_connection"
    ENSURE_CHANNELS = "ensure_channels"
    TELL_REMOVALS_HELD = "tell_removals_held"
    APPLY_ENVELOPES = "apply_envelopes"
    SYNC_CALENDAR = "sync_calendar"
    SYNC_CALENDARS = "sync_calendars"
    WRITE_BOOKING = "write_booking"
    FOLLOW_CONNECTION = "follow_connection"
    ENSURE_CALENDAR_CHANNELS = "ensure_calendar_channels"
    REEVALUATE_ORGANISATION = "reevaluate_organisation"
    REEVALUATE_CALENDAR = "reevaluate_calendar"


class Queue:
    """The actors bound to one broker (made by `worker.actors.bind`): what every send goes through."""

    def __init__(self, broker: dramatiq.Broker, actors: Mapping[ActorName, dramatiq.Actor[..., Any]]) -> None:
        missing = set(ActorName) - set(actors)
        if missing:
            raise ValueError(f"actors not bound: {sorted(missing)}")
        self.broker = broker
        self._actors = dict(actors)

    def actor(self, name: ActorName) -> dramatiq.Actor[..., Any]:
        """The bound actor named `name` (its queue, options, and body as `.fn`)."""
        return self._actors[name]

    def send(self, name: ActorName, *args: Any, delay_ms: int | None = None) -> None:
        """Put a message for actor `name` with `args` on its queue, now or after `delay_ms`. Raises what
        the broker raises (Redis unreachable): each sender decides what a lost send costs."""
        actor = self._actors[name]
        if delay_ms:
            actor.send_with_options(args=args, delay=delay_ms)
        else:
            actor.send(*args)

    def queue_of(self, name: ActorName) -> str:
        """The queue actor `name` is consumed from."""
        return self._actors[name].queue_name
