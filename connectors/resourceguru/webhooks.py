"""Resource Guru's outgoing webhooks, received: signature check and envelope parsing (pure, no I/O).

A delivery is a JSON envelope `{"id": <incrementing int>, "timestamp": <UNIX seconds>, "payload":
{…the object, stripped down…, "action": "create"|"update"|"delete", "type": "booking"|…}}`, signed
in `X-ResourceGuru-Signature` with `OpenSSL::HMAC.hexdigest('sha256', secret, request_body)`: the
lowercase hex HMAC-SHA256 of the raw body, nothing prefixed, no timestamp in it. So the signature
says nothing about freshness: a replayed delivery verifies, and is recognised by its envelope `id`
(the worker applies each id once). `X-ResourceGuru-Key`, the secret itself in a header, is not
trusted for anything: anyone who saw one delivery could repeat it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.records import DirectoryUser, PersonEvent, RemovedEvent, RemovedUser
from connectors.resourceguru.translate import Roster, booking_events, downtime_events, to_user

SIGNATURE_HEADER = "X-ResourceGuru-Signature"
MAX_BODY = 1024 * 1024  # one object per delivery: a megabyte is far more than any
ACTIONS = frozenset({"create", "update", "delete"})
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

Record = PersonEvent | RemovedEvent | DirectoryUser | RemovedUser


@dataclass(frozen=True, slots=True)
class Envelope:
    """One delivery, its payload already records.

    `payload` by type: booking and downtime → the PersonEvents of the people it is for now (all of
    them: whoever else had this event id no longer does), or a RemovedEvent when deleted or for
    nobody we know; resource → a DirectoryUser, or a RemovedUser when deleted or no longer a person
    with an address. Other types (account, client, project, resource_type…) carry nothing for us.
    """

    id: int
    timestamp: datetime
    action: str
    type: str
    payload: tuple[Record, ...]


def sign(secret: str, raw_body: bytes) -> str:
    """The signature Resource Guru sends for `raw_body` (hex HMAC-SHA256 with the webhook's secret)."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify(secret: str, raw_body: bytes, signature_header: str | None) -> bool:
    """Whether `signature_header` is the signature of exactly these bytes under `secret` (constant time).

    A missing or malformed header, or an empty secret, never verifies.
    """
    if not secret or signature_header is None:
        return False
    given = signature_header.strip()
    # compare_digest refuses non-ASCII text; anything that is not 64 hex digits is no signature anyway.
    if not _HEX_SHA256.fullmatch(given):
        return False
    return hmac.compare_digest(sign(secret, raw_body), given.lower())


def parse(raw_body: bytes | str, roster: Roster) -> Envelope:
    """The delivery in `raw_body`, read against `roster` (who each resource id is); ValueError if malformed.

    Everything is read before anything is returned, so a malformed delivery yields no record at all.
    """
    if len(raw_body) > MAX_BODY:
        raise ValueError("webhook body too large")
    try:
        data = json.loads(raw_body)
    except ValueError:
        raise ValueError("webhook body is not JSON") from None
    if not isinstance(data, Mapping):
        raise ValueError("webhook body is not a JSON object")
    envelope_id = _whole(data.get("id"), "envelope id", low=1)
    stamp = _whole(data.get("timestamp"), "envelope timestamp", low=0)
    payload = data.get("payload")
    if not isinstance(payload, Mapping):
        raise ValueError(f"envelope {envelope_id}: payload is {'missing' if payload is None else 'not an object'}")
    action, kind = payload.get("action"), payload.get("type")
    if action not in ACTIONS:
        raise ValueError(f"envelope {envelope_id}: payload action {action!r} is not create, update or delete")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"envelope {envelope_id}: payload type is missing")
    try:
        records = _records(str(action), kind, payload, roster)
    except ValueError as error:
        raise ValueError(f"envelope {envelope_id}: {error}") from None
    try:
        when = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"envelope {envelope_id}: timestamp {stamp} is not a time") from None
    return Envelope(envelope_id, when, str(action), kind, records)


def _records(action: str, kind: str, payload: Mapping[str, Any], roster: Roster) -> tuple[Record, ...]:
    if kind in ("booking", "downtime"):
        object_id = _whole(payload.get("id"), f"{kind} id", low=1)
        gone = RemovedEvent(f"{kind}:{object_id}")
        if action == "delete":
            return (gone,)
        translate = booking_events if kind == "booking" else downtime_events
        events = translate(payload, roster)
        return tuple(events) if events else (gone,)
    if kind == "resource":
        object_id = _whole(payload.get("id"), "resource id", low=1)
        if action == "delete":
            return (RemovedUser(str(object_id)),)
        user = to_user(payload, roster.human_types)
        if user is None:
            return (RemovedUser(str(object_id)),)
        return (user,)
    # The document names account, client, project and resource_type (and its prose custom fields):
    # acknowledged, nothing to apply. An unknown type is not malformed: Resource Guru adds types.
    return ()


def _whole(value: Any, what: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} is {'missing' if value is None else 'not a whole number'}")
    if value < low:
        raise ValueError(f"{what} {value} is below {low}")
    return value
