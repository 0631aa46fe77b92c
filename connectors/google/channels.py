"""Push channels on the Directory API's users (`PushSubscriber`).

`users.watch` takes one `event` per channel (add, delete, makeAdmin, undelete, update), so we open one
channel per event type we care about: add, update (which covers suspension, archiving, renames and
org-unit moves), delete and undelete. makeAdmin is left out: admin status is nothing we keep.
Groups have no watch method (the Directory API pushes changes to users only), so group changes wait
for the next scheduled round.

Google channels cannot be extended: renewing opens a new channel (a new id of ours) for the same event
and then stops the old one, so there is no gap. Stopping needs the channel id and Google's resourceId.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.google.service import DirectoryService, GoogleNotFound, GoogleSettings
from connectors.push import PushChannel
from connectors.records import ConnectorError

log = logging.getLogger(__name__)

EVENTS = ("add", "update", "delete", "undelete")


class GoogleChannels:
    """Opens, renews and stops users.watch channels for one Workspace customer."""

    def __init__(
        self,
        settings: GoogleSettings,
        *,
        events: Sequence[str] = EVENTS,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        service: DirectoryService | None = None,
    ) -> None:
        """Prepare a subscriber; `new_id` makes our channel ids (uuid4 unless a test wants them predictable)."""
        self.settings = settings
        self.events = tuple(events)
        self.new_id = new_id
        self.service = service or DirectoryService(settings)

    def subscribe(
        self, notification_url: str, lifecycle_url: str, secret: str, expires_at: datetime
    ) -> list[PushChannel]:
        """Open one channel per event type; if one fails, stop those already open and raise.

        `lifecycle_url` is Graph's; Google has no lifecycle notifications and ignores it.
        """
        opened: list[PushChannel] = []
        try:
            for event in self.events:
                opened.append(self._watch(event, notification_url, secret, expires_at))
        except ConnectorError:
            for channel in opened:
                self._stop_quietly(channel)
            raise
        return opened

    def renew(self, channel: PushChannel, notification_url: str, secret: str, expires_at: datetime) -> PushChannel:
        """Open a new channel for the same event, then stop the old one (which would expire anyway)."""
        fresh = self._watch(event_of(channel), notification_url, secret, expires_at)
        self._stop_quietly(channel)
        return fresh

    def unsubscribe(self, channel: PushChannel) -> None:
        """Stop a channel; one Google no longer knows (404) is already what we want."""
        body = {"id": channel.provider_id, "resourceId": channel.resource_id}
        try:
            self.service.call(lambda r: r.channels().stop(body=body), f"stopping channel {channel.provider_id}")
        except GoogleNotFound:
            return

    def _watch(self, event: str, address: str, secret: str, expires_at: datetime) -> PushChannel:
        body: dict[str, Any] = {
            "id": self.new_id(),
            "type": "web_hook",
            "address": address,
            "token": secret,
            "expiration": str(to_millis(expires_at)),
        }
        answer = self.service.call(
            lambda r: r.users().watch(customer=self.settings.customer, event=event, body=body),
            f"watching users ({event})",
        )
        expiration = answer.get("expiration")
        return PushChannel(
            provider_id=str(answer.get("id") or body["id"]),
            # Google's resourceUri names the event (…/users?customer=…&event=add), which renew needs again.
            resource=str(answer.get("resourceUri") or f"users?event={event}"),
            # Google may shorten the lifetime we asked for: its answer is what counts.
            expires_at=from_millis(int(expiration)) if expiration else expires_at.astimezone(UTC),
            resource_id=answer.get("resourceId"),
        )

    def _stop_quietly(self, channel: PushChannel) -> None:
        try:
            self.unsubscribe(channel)
        except ConnectorError as error:
            # The old channel expires by itself; failing the renewal over it would open yet another channel.
            log.warning("could not stop Google channel %s: %s", channel.provider_id, error.message)


def event_of(channel: PushChannel) -> str:
    """The users.watch event a channel was opened for, read from its resourceUri."""
    events = parse_qs(urlsplit(channel.resource).query).get("event")
    if not events or events[0] not in ("add", "update", "delete", "undelete", "makeAdmin"):
        raise ValueError(f"not a Google users.watch channel: {channel.resource!r}")
    return events[0]


def to_millis(when: datetime) -> int:
    """A datetime as the Unix milliseconds Google's channels use."""
    if when.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    return int(when.timestamp() * 1000)


def from_millis(millis: int) -> datetime:
    """Unix milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(millis / 1000, UTC)
