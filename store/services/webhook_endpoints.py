"""Webhook endpoints and REST hooks: validation, create, read, change, pause and resume, enable, delete.

Every change records an `endpoint.*` event (no event ever carries a signing secret). Resuming or
enabling an endpoint makes its pending deliveries due and hands their ids back, in event order, for
the caller to enqueue as a backlog.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from store import event_types as catalog
from store import outbox
from store.columns import utcnow
from store.errors import Invalid, NotFound
from store.models import Delivery, DeliveryStatus, EndpointKind, PayloadFormat, SignatureScheme, WebhookEndpoint
from store.secret_box import SecretBox
from store.services.webhook_secrets import generate_secret, use_ed25519

MAX_URL_LENGTH = 2000
WEBHOOK_URL = "the webhook URL"  # how a refusal names what was refused (connectors.outbound)
MAX_DESCRIPTION_LENGTH = 1000
MAX_PATTERNS = 100
MAX_RATE_LIMIT = 1000  # requests a second an endpoint may ask for at most
_UNSET: Any = object()

# An exact dotted type ("booking.created"), a prefix wildcard ("booking.*") or "*".
_PATTERN = re.compile(r"\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?")


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint with these patterns wants `event_type`; no pattern at all means every event."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _valid_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH or any(char.isspace() or ord(char) < 32 for char in url):
        raise Invalid("the URL must be an absolute http(s) URL without spaces", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises on a bad one
    except ValueError:
        raise Invalid(f"{url!r} is not a valid URL", field="url") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid("the URL must start with http:// or https:// and name a host", field="url")
    return url


def _valid_patterns(event_types: Iterable[str]) -> list[str]:
    if isinstance(event_types, str):
        raise Invalid("event_types is a list of event types or patterns", field="event_types")
    cleaned: list[str] = []
    for pattern in event_types:
        if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern.strip()):
            raise Invalid(
                f"{pattern!r} is not an event type (booking.created), a wildcard (booking.*) or *",
                field="event_types",
            )
        unknown = catalog.check_pattern(pattern.strip())
        if unknown is not None:
            raise Invalid(unknown, field="event_types")
        if pattern.strip() not in cleaned:
            cleaned.append(pattern.strip())
    if len(cleaned) > MAX_PATTERNS:
        raise Invalid(f"at most {MAX_PATTERNS} event types", field="event_types")
    return cleaned


def _valid_description(description: str) -> str:
    description = description.strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise Invalid(f"the description is longer than {MAX_DESCRIPTION_LENGTH} characters", field="description")
    return description


def _valid_format(payload_format: str) -> PayloadFormat:
    try:
        return PayloadFormat(payload_format)
    except ValueError:
        names = ", ".join(member.value for member in PayloadFormat)
        raise Invalid(f"payload_format must be one of {names}", field="payload_format") from None


def _valid_rate_limit(rate: int | None) -> int | None:
    if rate is not None and (isinstance(rate, bool) or not 1 <= rate <= MAX_RATE_LIMIT):
        raise Invalid(
            f"rate_limit_per_second must be from 1 to {MAX_RATE_LIMIT}, or null", field="rate_limit_per_second"
        )
    return rate


def _valid_signature(signature: str) -> SignatureScheme:
    try:
        return SignatureScheme(signature)
    except ValueError:
        names = ", ".join(member.value for member in SignatureScheme)
        raise Invalid(f"signature must be one of {names}", field="signature") from None


def _valid_kind(kind: str) -> EndpointKind:
    try:
        return EndpointKind(kind)
    except ValueError:
        names = ", ".join(member.value for member in EndpointKind)
        raise Invalid(f"kind must be one of {names}", field="kind") from None


def shown_url(url: str) -> str:
    """The URL as events show it: credentials in it (user:password@) are replaced by ***."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def describe(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What `endpoint.*` events say of an endpoint (never its secret)."""
    return {
        "endpoint_id": endpoint.id,
        "kind": endpoint.kind,
        "url": shown_url(endpoint.url),
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "payload_format": endpoint.payload_format,
        "paused": endpoint.paused,
        "disabled": endpoint.disabled_at is not None,
        "ordered": endpoint.ordered,
        "rate_limit_per_second": endpoint.rate_limit_per_second,
        "signature": endpoint.signature,
    }


# --- endpoints ---------------------------------------------------------------------------------


def create_endpoint(
    session: Session,
    organisation_id: int,
    url: str,
    *,
    box: SecretBox,
    description: str = "",
    event_types: Sequence[str] = (),
    payload_format: str = "event",
    kind: str = "webhook",
    paused: bool = False,
    ordered: bool = False,
    rate_limit_per_second: int | None = None,
    signature: str = "hmac",
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its signing secret (kept only encrypted). Records `endpoint.created`.

    The URL is checked for form only (http/https with a host); the SSRF checks are the caller's. An
    ed25519 endpoint gets a key pair too: its public key is on the endpoint, the private one encrypted.
    """
    secret = generate_secret()
    endpoint = WebhookEndpoint(
        organisation_id=organisation_id,
        url=_valid_url(url),
        description=_valid_description(description),
        event_types=_valid_patterns(event_types),
        payload_format=_valid_format(payload_format),
        kind=_valid_kind(kind),
        paused=paused,
        ordered=bool(ordered),
        rate_limit_per_second=_valid_rate_limit(rate_limit_per_second),
        signature=_valid_signature(signature),
        secret_encrypted=box.encrypt(secret),
    )
    if endpoint.signature is SignatureScheme.ED25519:
        use_ed25519(endpoint, box)
    session.add(endpoint)
    session.flush()
    outbox.record(session, organisation_id, "endpoint.created", describe(endpoint))
    return endpoint, secret


def get_endpoint(session: Session, organisation_id: int, endpoint_id: int) -> WebhookEndpoint:
    """The organisation's endpoint `endpoint_id`; NotFound when it has none of that id."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.organisation_id != organisation_id:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def select_endpoints(organisation_id: int, *, kind: str | None = None) -> Select[WebhookEndpoint]:
    """The organisation's endpoints, of one kind when given, unordered."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.organisation_id == organisation_id)
    if kind is not None:
        query = query.where(WebhookEndpoint.kind == _valid_kind(kind))
    return query


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
    payload_format: str | None = None,
    paused: bool | None = None,
    ordered: bool | None = None,
    rate_limit_per_second: int | None = _UNSET,
    signature: str | None = None,
    box: SecretBox | None = None,
    now: datetime | None = None,
) -> tuple[WebhookEndpoint, list[int]]:
    """Change the given fields (None leaves one as it is; `rate_limit_per_second=None` removes the
    limit); records `endpoint.updated` when anything changed. Switching to ed25519 makes the key pair
    (with `box`) the first time.

    When the change resumes a paused endpoint, its pending deliveries become due at `now` (default:
    the current time) and their ids come back in event order, for the caller to enqueue in order.
    """
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = _valid_url(url)
    if description is not None:
        changes["description"] = _valid_description(description)
    if event_types is not None:
        changes["event_types"] = _valid_patterns(event_types)
    if payload_format is not None:
        changes["payload_format"] = _valid_format(payload_format)
    if paused is not None:
        changes["paused"] = paused
    if ordered is not None:
        changes["ordered"] = bool(ordered)
    if rate_limit_per_second is not _UNSET:
        changes["rate_limit_per_second"] = _valid_rate_limit(rate_limit_per_second)
    if signature is not None:
        changes["signature"] = _valid_signature(signature)
    changes = {name: value for name, value in changes.items() if getattr(endpoint, name) != value}
    if not changes:
        return endpoint, []
    was_live = _live(endpoint)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes.get("signature") is SignatureScheme.ED25519:
        if box is None:
            raise ValueError("switching an endpoint to ed25519 needs the key ring (box)")
        use_ed25519(endpoint, box)
    if "url" in changes:
        changes["url"] = shown_url(changes["url"])
    outbox.record(session, endpoint.organisation_id, "endpoint.updated", {**describe(endpoint), "changes": changes})
    if was_live or not _live(endpoint):
        return endpoint, []
    return endpoint, _restart_pending(session, endpoint, now or utcnow())


def enable_endpoint(session: Session, endpoint: WebhookEndpoint, *, now: datetime | None = None) -> list[int]:
    """Turn a disabled endpoint back on; records `endpoint.enabled`.

    Returns, as a resume does, the ids of its pending deliveries in event order (none while it is
    paused). Deliveries exhausted meanwhile stay so: `replay_failed` sends them again.
    """
    if endpoint.disabled_at is None:
        return []
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.failing_since = None
    outbox.record(session, endpoint.organisation_id, "endpoint.enabled", describe(endpoint))
    return _restart_pending(session, endpoint, now or utcnow()) if _live(endpoint) else []


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries and their attempts; records `endpoint.deleted`."""
    outbox.record(session, endpoint.organisation_id, "endpoint.deleted", describe(endpoint))
    session.delete(endpoint)
    session.flush()


def _live(endpoint: WebhookEndpoint) -> bool:
    return not endpoint.paused and endpoint.disabled_at is None


def _restart_pending(session: Session, endpoint: WebhookEndpoint, now: datetime) -> list[int]:
    rows = session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.status == DeliveryStatus.PENDING)
        .values(next_attempt_at=now, due_at=now)
        .returning(Delivery.id, Delivery.event_seq)
    ).all()
    return [delivery_id for delivery_id, _ in sorted(rows, key=lambda row: (row[1], row[0]))]
