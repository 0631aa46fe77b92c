"""Push channels: how a directory tells us that something changed (Graph subscriptions, Google watch channels).

A notification never carries the change itself as far as we are concerned: it only says "read
again", and the worker runs one coalesced sync. So a channel needs a secret to check that a
notification is genuine (Graph `clientState`, Google channel token) and an expiry to renew before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PushChannel:
    """One live channel at the provider."""

    provider_id: str  # Graph subscription id; Google channel id (ours, chosen at watch time)
    resource: str  # what it watches: "users", "groups"; Google's resourceUri
    expires_at: datetime  # UTC
    resource_id: str | None = None  # Google's X-Goog-Resource-ID (needed to stop the channel)


@dataclass(frozen=True, slots=True)
class Notification:
    """A parsed, not yet verified push notification."""

    channel_id: str  # Graph subscriptionId; Google X-Goog-Channel-ID
    secret: str  # Graph clientState; Google X-Goog-Channel-Token
    kind: str  # "change"; Graph lifecycle: "reauthorizationRequired", "subscriptionRemoved", "missed"; Google: "sync"
    resource_id: str | None = None  # Google X-Goog-Resource-ID, checked against the stored channel


class PushSubscriber(Protocol):
    """A connector that can open, renew and close push channels."""

    def subscribe(
        self, notification_url: str, lifecycle_url: str, secret: str, expires_at: datetime
    ) -> list[PushChannel]:
        """Open every channel this directory needs (users, and groups where supported)."""
        ...

    def renew(self, channel: PushChannel, notification_url: str, secret: str, expires_at: datetime) -> PushChannel:
        """Extend a channel (Graph PATCH) or replace it with a new one (Google: watch again, stop the old)."""
        ...

    def unsubscribe(self, channel: PushChannel) -> None:
        """Close a channel; one already gone at the provider is not an error."""
        ...
