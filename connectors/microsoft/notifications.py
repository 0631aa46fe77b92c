"""Parsing Graph change and lifecycle notifications; nothing here is trusted yet.

Graph POSTs a collection, `{"value": [...]}`, to the subscription's notificationUrl (changes) or
lifecycleNotificationUrl (lifecycle events: `reauthorizationRequired`, `subscriptionRemoved`,
`missed`). Each item names its subscription and carries the `clientState` given at creation;
whoever holds the stored secret compares it with `secret_matches`. The URL validation handshake
(`?validationToken=…`, echoed back as text/plain) carries no body and is not parsed here.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from connectors.push import Notification

MAX_BODY = 1024 * 1024  # Graph batches notifications, but a megabyte is far more than a batch


def parse_notifications(body: bytes | str | Mapping[str, Any]) -> list[Notification]:
    """The notifications in a Graph notification collection; ValueError if the body is not one.

    Change items become kind "change"; lifecycle items take their `lifecycleEvent` value.
    """
    data: Any
    if isinstance(body, bytes | str):
        if len(body) > MAX_BODY:
            raise ValueError("notification body too large")
        try:
            data = json.loads(body)
        except ValueError:
            raise ValueError("notification body is not JSON") from None
    else:
        data = body
    if not isinstance(data, Mapping) or not isinstance(data.get("value"), list):
        raise ValueError('notification body is not a collection ({"value": [...]})')
    notifications: list[Notification] = []
    for index, item in enumerate(data["value"]):
        if not isinstance(item, Mapping):
            raise ValueError(f"notification {index} is not an object")
        subscription = item.get("subscriptionId")
        if not isinstance(subscription, str) or not subscription:
            raise ValueError(f"notification {index} has no subscriptionId")
        # clientState is absent only when the subscription was made without one; an empty secret
        # then fails verification, which is what such a notification deserves.
        secret = item.get("clientState", "")
        if not isinstance(secret, str):
            raise ValueError(f"notification {index} has a clientState that is not a string")
        lifecycle = item.get("lifecycleEvent")
        if lifecycle is not None:
            if not isinstance(lifecycle, str) or not lifecycle:
                raise ValueError(f"notification {index} has an unreadable lifecycleEvent")
            kind = lifecycle
        elif isinstance(item.get("changeType"), str):
            kind = "change"
        else:
            raise ValueError(f"notification {index} is neither a change nor a lifecycle event")
        notifications.append(Notification(channel_id=subscription, secret=secret, kind=kind))
    return notifications


def secret_matches(expected: str, given: str) -> bool:
    """Whether a notification's clientState is the stored secret (constant-time)."""
    return hmac.compare_digest(expected.encode(), given.encode())
