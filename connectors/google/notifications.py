"""Google push notifications: the X-Goog-* headers of a POST to our notification URL.

Everything we need is in the headers (the body, a user resource for Directory events, is not needed:
a notification only says "read again"). Google first sends a `sync` message (message number 1) when
a channel opens; after that `X-Goog-Resource-State` is the event that happened (add, update, delete,
undelete, makeAdmin for users; exists, not_exists for other APIs).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from connectors.push import Notification

CHANNEL_ID = "X-Goog-Channel-ID"
CHANNEL_TOKEN = "X-Goog-Channel-Token"  # noqa: S105 - a header name, not a secret
RESOURCE_ID = "X-Goog-Resource-ID"
RESOURCE_STATE = "X-Goog-Resource-State"
MESSAGE_NUMBER = "X-Goog-Message-Number"


def parse_notification(headers: Mapping[str, str]) -> Notification:
    """A Notification from a push request's headers (any letter case); ValueError when one is missing.

    The channel token is returned unverified: compare it with `secret_matches` against the secret the
    channel was opened with, and the resource id against the stored channel's.
    """
    lowered = {key.lower(): value for key, value in headers.items()}

    def need(name: str) -> str:
        value = lowered.get(name.lower(), "").strip()
        if not value:
            raise ValueError(f"not a Google push notification: {name} is missing")
        return value

    channel_id = need(CHANNEL_ID)
    resource_id = need(RESOURCE_ID)
    state = need(RESOURCE_STATE)
    number = need(MESSAGE_NUMBER)
    if not number.isdigit():
        raise ValueError(f"not a Google push notification: {MESSAGE_NUMBER} is {number!r}")
    # We always open channels with a token, so a notification without one cannot be ours.
    token = need(CHANNEL_TOKEN)
    return Notification(
        channel_id=channel_id,
        secret=token,
        kind="sync" if state == "sync" else "change",
        resource_id=resource_id,
    )


def secret_matches(expected: str, given: str) -> bool:
    """Whether a notification's token is the channel's secret, in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
