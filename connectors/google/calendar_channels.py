"""Push channels on a person's primary calendar (`PushSubscriber`): `events.watch` and `channels.stop`.

One channel per calendar. Google sends a `sync` message when it opens and `exists` whenever an event
of the calendar changes (the notification says nothing about what: the worker reads incrementally).
The lifetime is asked for twice, as `expiration` (ms) and as `params.ttl` (seconds, what the Calendar
guide documents; without it Google gives a week); Google's answer is what counts. Channels cannot be
extended: renewing watches again under a new id of ours and then stops the old channel, so no change
falls in a gap. Stopping needs our channel id and Google's resourceId.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connectors.google.calendar_service import CalendarService
from connectors.google.channels import from_millis, to_millis
from connectors.google.service import GoogleNotFound, GoogleSettings
from connectors.push import PushChannel
from connectors.records import ConnectorError

log = logging.getLogger(__name__)


class GoogleCalendarChannels:
    """Opens, renews and stops the events.watch channel of one person's primary calendar."""

    def __init__(
        self,
        settings: GoogleSettings,
        person: str,
        *,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        service: CalendarService | None = None,
    ) -> None:
        """Prepare a subscriber acting as `person`; `new_id` makes our channel ids (uuid4 by default)."""
        self.settings = settings
        self.person = person
        self.new_id = new_id
        self.now = now
        self.service = service or CalendarService(settings, person)

    def subscribe(
        self, notification_url: str, lifecycle_url: str, secret: str, expires_at: datetime
    ) -> list[PushChannel]:
        """Open the calendar's channel (`lifecycle_url` is Graph's; Google has no lifecycle messages)."""
        return [self._watch(notification_url, secret, expires_at)]

    def renew(self, channel: PushChannel, notification_url: str, secret: str, expires_at: datetime) -> PushChannel:
        """Open a new channel, then stop the old one (which would expire anyway)."""
        fresh = self._watch(notification_url, secret, expires_at)
        try:
            self.unsubscribe(channel)
        except ConnectorError as error:
            # Failing the renewal over the old channel would only make the worker open yet another one.
            log.warning("could not stop Google channel %s: %s", channel.provider_id, error.message)
        return fresh

    def unsubscribe(self, channel: PushChannel) -> None:
        """Stop a channel; one Google no longer knows (404) is already what we want."""
        body = {"id": channel.provider_id, "resourceId": channel.resource_id}
        try:
            self.service.call(lambda r: r.channels().stop(body=body), f"stopping channel {channel.provider_id}")
        except GoogleNotFound:
            return

    def _watch(self, address: str, secret: str, expires_at: datetime) -> PushChannel:
        seconds = max(1, math.ceil((expires_at - self.now()).total_seconds()))
        body: dict[str, Any] = {
            "id": self.new_id(),
            "type": "web_hook",
            "address": address,
            "token": secret,
            "expiration": str(to_millis(expires_at)),
            "params": {"ttl": str(seconds)},
        }
        answer = self.service.call(
            lambda r: r.events().watch(calendarId="primary", body=body), f"watching {self.person}'s calendar"
        )
        expiration = answer.get("expiration")
        return PushChannel(
            provider_id=str(answer.get("id") or body["id"]),
            resource=str(answer.get("resourceUri") or "calendars/primary/events"),
            expires_at=from_millis(int(expiration)) if expiration else expires_at.astimezone(UTC),
            resource_id=answer.get("resourceId"),
        )
