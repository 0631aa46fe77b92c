"""The SSRF guard as webhooks use it. The rules live in `connectors.outbound`, the one guard for every
URL that comes from input; here a refusal names the webhook URL."""

from __future__ import annotations

from connectors import outbound
from connectors.outbound import UnsafeURL, check_address, refusal, resolve_safe, warn_if_private_allowed

__all__ = [
    "WEBHOOK_URL",
    "UnsafeURL",
    "check_address",
    "check_url",
    "refusal",
    "resolve_safe",
    "warn_if_private_allowed",
]

WEBHOOK_URL = "the webhook URL"


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL that may not be called (see `connectors.outbound.check_url`)."""
    outbound.check_url(url, allow_private=allow_private, what=WEBHOOK_URL)
