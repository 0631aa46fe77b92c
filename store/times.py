"""How a time is written wherever the API shows one: REST answers (api.v1.common.Timestamp) and the
data of events (store.outbox), hence webhooks and hook payloads too.

ISO 8601 (RFC 3339) in UTC with `Z`, with microseconds only when there are any:
`2030-01-31T08:00:00Z`, `2030-01-31T08:00:00.250000Z`. A naive time is a stored one, which is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime) -> str:
    """`value` as the API writes a time (see the module's docstring)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")
