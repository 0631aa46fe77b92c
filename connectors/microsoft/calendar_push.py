"""Change notifications on one person's Outlook events (a PushSubscriber over MicrosoftSubscriptions).

One subscription on `users/{id}/events` (created, updated, deleted), at most 4,230 minutes long, so
the worker renews it about daily. A notification only says "read again": the worker runs an
incremental calendar round. A `missed` lifecycle event means notifications were lost, which the
same round covers; `subscriptionRemoved` means subscribing again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

from connectors.microsoft.graph import GraphClient
from connectors.microsoft.subscriptions import MicrosoftSubscriptions


def events_resource(user: str) -> str:
    """The subscription resource for a person's events (`user`: Graph id or userPrincipalName)."""
    return f"users/{quote(user, safe='@')}/events"


def _now() -> datetime:
    return datetime.now(UTC)


class OutlookEventSubscriptions(MicrosoftSubscriptions):
    """Opens, renews and closes the subscription on one person's Outlook events."""

    def __init__(self, graph: GraphClient, user: str, *, clock: Callable[[], datetime] = _now) -> None:
        super().__init__(graph, resources=(events_resource(user),), clock=clock)
        self.user = user
