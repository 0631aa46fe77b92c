"""Reading Google's JSON error bodies and deciding what a failed call means for us.

Google answers errors as `{"error": {"code", "message", "errors": [{"domain", "reason", "message"}],
"status"}}`. Throttling arrives as 429, or as 403 with reason `rateLimitExceeded` or
`userRateLimitExceeded` (the older style some Admin SDK endpoints still use); both are worth a retry,
as are 5xx answers. Other 401/403 answers mean the delegation, a scope or the admin subject is wrong,
which only an admin can fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class GoogleError:
    """What one error answer said."""

    status: int
    reason: str | None  # the first `errors[].reason`, e.g. "rateLimitExceeded", "forbidden", "notFound"
    message: str

    @property
    def throttled(self) -> bool:
        """Google asked us to slow down."""
        return self.status == 429 or (self.status == 403 and self.reason in THROTTLE_REASONS)

    @property
    def retryable(self) -> bool:
        """Worth the same request again after a pause."""
        return self.throttled or self.status in RETRYABLE_STATUSES


def parse_error(status: int, content: bytes | str | None) -> GoogleError:
    """Read an error answer; a body that is not Google's JSON leaves the reason unknown."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else (content or "")
    reason: str | None = None
    message = ""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        details = error.get("errors")
        if isinstance(details, list) and details and isinstance(details[0], dict):
            found = details[0].get("reason")
            reason = str(found) if found else None
        if reason is None and isinstance(error.get("status"), str):
            reason = str(error["status"])
    elif isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
        reason = error
        message = str(body.get("error_description") or "") if isinstance(body, dict) else ""
    if not message:
        message = text.strip()[:200] or f"HTTP {status}"
    return GoogleError(status=status, reason=reason, message=message)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
