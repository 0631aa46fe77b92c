"""Graph change-notification subscriptions on `users` and `groups` (a PushSubscriber).

Graph validates the notification URLs when a subscription is created (it POSTs
`?validationToken=…` and wants the token back as text/plain within 10 s), so whoever serves
`notification_url` must answer that before `subscribe` returns. Directory subscriptions live at
most 41,760 minutes (29 days), a person's Outlook events (`users/{id}/events`, created, updated
and deleted) 4,230 minutes (under 3 days); a later expiry is clamped, a little short of the
limit so clock skew between us and Graph does not turn the request into a 400.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from connectors.microsoft.calendar_events import CALENDARS_PERMISSION
from connectors.microsoft.directory import GROUPS_PERMISSION, USERS_PERMISSION
from connectors.microsoft.graph import GraphClient, GraphError
from connectors.push import PushChannel
from connectors.records import ConnectorError

MAX_LIFETIME = timedelta(minutes=41760)
OUTLOOK_MAX_LIFETIME = timedelta(minutes=4230)
SKEW_MARGIN = timedelta(minutes=5)
CHANGE_TYPE = "updated,deleted"  # for users and groups, "updated" also covers creation
EVENTS_CHANGE_TYPE = "created,updated,deleted"
_PERMISSIONS = {"users": USERS_PERMISSION, "groups": GROUPS_PERMISSION}
_EVENTS = re.compile(r"^users/[^/]+/events$", re.IGNORECASE)  # Graph may echo it back as Users/…/Events


def _is_events(resource: str) -> bool:
    return _EVENTS.match(resource) is not None


def _permission(resource: str) -> str:
    return CALENDARS_PERMISSION if _is_events(resource) else _PERMISSIONS.get(resource, USERS_PERMISSION)


def _lifetime(resource: str) -> timedelta:
    return OUTLOOK_MAX_LIFETIME if _is_events(resource) else MAX_LIFETIME


def _now() -> datetime:
    return datetime.now(UTC)


class MicrosoftSubscriptions:
    """Opens, renews and closes Graph subscriptions for the given resources."""

    def __init__(
        self,
        graph: GraphClient,
        *,
        resources: Sequence[str] = ("users", "groups"),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        unknown = {resource for resource in resources if resource not in _PERMISSIONS and not _is_events(resource)}
        if unknown:
            raise ValueError(f"unsupported Graph subscription resources: {sorted(unknown)}")
        self._graph = graph
        self._resources = tuple(resources)
        self._clock = clock

    def clamp(self, expires_at: datetime) -> datetime:
        """`expires_at` (aware) moved back to what Graph accepts for every resource of this subscriber."""
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        lifetime = min((_lifetime(resource) for resource in self._resources), default=MAX_LIFETIME)
        latest = self._clock() + lifetime - SKEW_MARGIN
        return min(expires_at.astimezone(UTC), latest)

    def subscribe(
        self, notification_url: str, lifecycle_url: str, secret: str, expires_at: datetime
    ) -> list[PushChannel]:
        """Create one subscription per resource; if one fails, those already made are deleted again."""
        channels: list[PushChannel] = []
        expiry = self.clamp(expires_at)
        try:
            for resource in self._resources:
                body = {
                    "changeType": EVENTS_CHANGE_TYPE if _is_events(resource) else CHANGE_TYPE,
                    "notificationUrl": notification_url,
                    "lifecycleNotificationUrl": lifecycle_url,
                    "resource": resource,
                    "expirationDateTime": _format(expiry),
                    "clientState": secret,
                }
                response = self._graph.request("POST", "subscriptions", permission=_permission(resource), json=body)
                channels.append(_channel(response.json(), resource))
        except ConnectorError:
            for channel in channels:
                with contextlib.suppress(ConnectorError):  # best effort: the first failure is the one to report
                    self.unsubscribe(channel)
            raise
        return channels

    def renew(self, channel: PushChannel, notification_url: str, secret: str, expires_at: datetime) -> PushChannel:
        """Extend the subscription (PATCH). A subscription Graph no longer has raises ConnectorError.

        Graph's PATCH cannot change `clientState`, so `secret` is not sent; `notification_url` is
        (Graph allows moving it). A 404 means Graph removed the subscription (it expired, or a
        `subscriptionRemoved` lifecycle event): the caller subscribes again.
        """
        body = {"expirationDateTime": _format(self.clamp(expires_at)), "notificationUrl": notification_url}
        try:
            response = self._graph.request(
                "PATCH",
                f"subscriptions/{quote(channel.provider_id)}",
                permission=_permission(channel.resource),
                json=body,
            )
        except GraphError as error:
            if error.status == 404:
                raise ConnectorError(
                    f"Graph subscription {channel.provider_id} on {channel.resource} no longer exists; subscribe again"
                ) from None
            raise
        return _channel(response.json(), channel.resource)

    def unsubscribe(self, channel: PushChannel) -> None:
        """Delete the subscription; one Graph no longer has is fine."""
        self._graph.request(
            "DELETE",
            f"subscriptions/{quote(channel.provider_id)}",
            permission=_permission(channel.resource),
            ok_statuses=frozenset({404}),
        )


def _channel(body: Any, resource: str) -> PushChannel:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ConnectorError("Graph answered a subscription request without a subscription id")
    return PushChannel(
        provider_id=body["id"],
        resource=str(body.get("resource") or resource).strip("/"),
        expires_at=parse_datetime(str(body.get("expirationDateTime", ""))),
    )


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_datetime(text: str) -> datetime:
    """A Graph timestamp (ISO 8601, `Z` or an offset, up to 7 fractional digits) as an aware UTC datetime."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python takes at most 6 fractional digits; Graph writes 7.
    head, dot, rest = value.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConnectorError(f"Graph sent an unreadable timestamp: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
