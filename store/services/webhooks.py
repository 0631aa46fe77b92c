"""Outgoing webhooks: endpoints and their signing secrets, the outbox relay that turns events into
deliveries, and the bookkeeping of delivery attempts (retries, disabling, replays).

Endpoint changes record `endpoint.*` events (and `hook.deleted` when a REST hook's target answers
410). Deliveries and attempts are bookkeeping and record nothing: an event per delivery would be
relayed again and feed itself. No event ever carries a signing secret.
"""

from __future__ import annotations

import base64
import random
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Integer, Row, Select, Table, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.errors import Invalid, NotAllowed, NotFound
from store.models import (
    Base,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EndpointKind,
    OutboxEvent,
    PayloadFormat,
    WebhookEndpoint,
)
from store.secret_box import SecretBox

SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker, not a secret
ROTATION_GRACE = timedelta(hours=24)
FAILING_DISABLE_AFTER = timedelta(days=5)
EXCERPT_BYTES = 1024
MAX_RETRY_AFTER = 24 * 3600.0  # seconds: a receiver cannot park a delivery for longer
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 1000
MAX_PATTERNS = 100

# An exact dotted type ("booking.created"), a prefix wildcard ("booking.*") or "*".
_PATTERN = re.compile(r"\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?")


def _table(entity: type[Base]) -> Table:
    """The entity's table, for Core statements (the hot paths are built once, with bound parameters)."""
    table = entity.__table__
    assert isinstance(table, Table)
    return table


# --- matching and validation -------------------------------------------------------------------


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


def _valid_kind(kind: str) -> EndpointKind:
    try:
        return EndpointKind(kind)
    except ValueError:
        names = ", ".join(member.value for member in EndpointKind)
        raise Invalid(f"kind must be one of {names}", field="kind") from None


def _shown_url(url: str) -> str:
    """The URL as events show it: credentials in it (user:password@) are replaced by ***."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _describe(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.id,
        "kind": endpoint.kind,
        "url": _shown_url(endpoint.url),
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "payload_format": endpoint.payload_format,
        "paused": endpoint.paused,
        "disabled": endpoint.disabled_at is not None,
    }


# --- endpoints ---------------------------------------------------------------------------------


def generate_secret() -> str:
    """A new signing secret: `whsec_` and the standard base64 of 32 random bytes (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


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
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its signing secret (kept only encrypted). Records `endpoint.created`.

    The URL is checked for form only (http/https with a host); the SSRF checks are the caller's.
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
        secret_encrypted=box.encrypt(secret),
    )
    session.add(endpoint)
    session.flush()
    outbox.record(session, organisation_id, "endpoint.created", _describe(endpoint))
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
    now: datetime | None = None,
) -> tuple[WebhookEndpoint, list[int]]:
    """Change the given fields (None leaves one as it is); records `endpoint.updated` when anything changed.

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
    changes = {name: value for name, value in changes.items() if getattr(endpoint, name) != value}
    if not changes:
        return endpoint, []
    was_live = _live(endpoint)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if "url" in changes:
        changes["url"] = _shown_url(changes["url"])
    outbox.record(session, endpoint.organisation_id, "endpoint.updated", {**_describe(endpoint), "changes": changes})
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
    outbox.record(session, endpoint.organisation_id, "endpoint.enabled", _describe(endpoint))
    return _restart_pending(session, endpoint, now or utcnow()) if _live(endpoint) else []


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries and their attempts; records `endpoint.deleted`."""
    outbox.record(session, endpoint.organisation_id, "endpoint.deleted", _describe(endpoint))
    session.delete(endpoint)
    session.flush()


def _live(endpoint: WebhookEndpoint) -> bool:
    return not endpoint.paused and endpoint.disabled_at is None


def _restart_pending(session: Session, endpoint: WebhookEndpoint, now: datetime) -> list[int]:
    rows = session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.status == DeliveryStatus.PENDING)
        .values(next_attempt_at=now)
        .returning(Delivery.id, Delivery.event_seq)
    ).all()
    return [delivery_id for delivery_id, _ in sorted(rows, key=lambda row: (row[1], row[0]))]


# --- signing secrets ---------------------------------------------------------------------------


class SigningKeys(Protocol):
    """What signing needs of an endpoint: a WebhookEndpoint or a DeliveryJob."""

    @property
    def secret_encrypted(self) -> str: ...

    @property
    def previous_secret_encrypted(self) -> str | None: ...

    @property
    def previous_secret_expires_at(self) -> datetime | None: ...


def signing_secrets(endpoint: SigningKeys, box: SecretBox, now: datetime) -> list[str]:
    """The secrets to sign with at `now`: the current one, and the previous one during its grace period."""
    current = [box.decrypt(endpoint.secret_encrypted)]
    previous, expires_at = endpoint.previous_secret_encrypted, endpoint.previous_secret_expires_at
    if previous is not None and expires_at is not None and expires_at > now:
        return [*current, box.decrypt(previous)]
    return current


def reveal_secret(endpoint: WebhookEndpoint, box: SecretBox) -> str:
    """The endpoint's current signing secret, in clear."""
    return box.decrypt(endpoint.secret_encrypted)


def rotate_secret(session: Session, endpoint: WebhookEndpoint, box: SecretBox, now: datetime) -> str:
    """Give the endpoint a new secret and return it; the current one keeps signing for ROTATION_GRACE.

    A secret still in its grace period from an earlier rotation stops at once. Records
    `endpoint.secret_rotated` (which names no secret).
    """
    secret = generate_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret_encrypted = box.encrypt(secret)
    outbox.record(
        session,
        endpoint.organisation_id,
        "endpoint.secret_rotated",
        {"endpoint_id": endpoint.id, "previous_valid_until": endpoint.previous_secret_expires_at},
    )
    return secret


# --- the outbox relay --------------------------------------------------------------------------


def relay(session: Session, *, limit: int = 500, now: datetime) -> list[int]:
    """Turn up to `limit` unrelayed events, oldest first, into deliveries, and mark them relayed.

    Each event gets one delivery per endpoint of its organisation that is not disabled, existed when
    the event was written and wants its type; `endpoint.disabled` never goes to the endpoint it is
    about. Deliveries that exist already are left alone, so relaying again is harmless. On PostgreSQL
    concurrent relays take disjoint events (SKIP LOCKED); SQLite has one writer at a time.

    Returns the ids of the new deliveries that are due now (those of paused endpoints wait), in
    event order.
    """
    return [delivery_id for _, delivery_id in relay_due(session, limit=limit, now=now).due]


@dataclass(frozen=True)
class Relayed:
    """What one `relay_due` did: how many events it took, and the new deliveries due now."""

    events: int
    due: list[tuple[int, int]]  # (endpoint id, delivery id), in event order


def relay_due(session: Session, *, limit: int = 500, now: datetime, lease_until: datetime | None = None) -> Relayed:
    """As `relay`; with `lease_until`, the deliveries due now are made leased until then (see `lease`),
    for a caller that enqueues them at once."""
    events = _take_unrelayed(session, limit)
    if not events:
        return Relayed(0, [])
    endpoints = _endpoints_by_organisation(session, {event.organisation_id for event in events})
    rows = [
        _new_delivery(event, endpoint, now, due=now if endpoint.paused or lease_until is None else lease_until)
        for event in events
        for endpoint in endpoints.get(event.organisation_id, ())
        if _wants(endpoint, event)
    ]
    created = _insert_missing(session, rows)
    session.execute(_MARK_RELAYED, {"event_ids": [event.id for event in events], "relayed_now": now})
    paused = {endpoint.id for group in endpoints.values() for endpoint in group if endpoint.paused}
    position = {event.id: index for index, event in enumerate(events)}
    due = sorted((position[event_id], endpoint_id, delivery_id) for delivery_id, endpoint_id, event_id in created)
    return Relayed(
        len(events), [(endpoint_id, delivery_id) for _, endpoint_id, delivery_id in due if endpoint_id not in paused]
    )


def has_unrelayed(session: Session) -> bool:
    """Whether unrelayed events remain that no other relay is holding (so relaying again has work)."""
    # Events another relay has locked are skipped: they are in hand, and waiting on them would spin.
    found = session.scalar(
        select(OutboxEvent.id).where(OutboxEvent.relayed_at.is_(None)).limit(1).with_for_update(skip_locked=True)
    )
    return found is not None


def oldest_unrelayed(session: Session) -> datetime | None:
    """When the oldest event still waiting for the relay was written (the outbox lag), or None."""
    return session.scalar(select(func.min(OutboxEvent.created_at)).where(OutboxEvent.relayed_at.is_(None)))


_TAKE_UNRELAYED = (
    select(
        OutboxEvent.id,
        OutboxEvent.organisation_id,
        OutboxEvent.seq,
        OutboxEvent.type,
        OutboxEvent.created_at,
        OutboxEvent.data,
    )
    .where(OutboxEvent.relayed_at.is_(None))
    .order_by(OutboxEvent.created_at, OutboxEvent.organisation_id, OutboxEvent.seq)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True)
)
# KEY SHARE: an endpoint cannot be deleted under the relay (its new deliveries would lose their
# foreign key), yet attempts may still update it.
_LIVE_ENDPOINTS = (
    select(WebhookEndpoint)
    .where(
        WebhookEndpoint.organisation_id.in_(bindparam("organisation_ids", expanding=True)),
        WebhookEndpoint.disabled_at.is_(None),
    )
    .order_by(WebhookEndpoint.id)
    .with_for_update(read=True, key_share=True)
)
_MARK_RELAYED = (
    update(_table(OutboxEvent))
    .where(_table(OutboxEvent).c.id.in_(bindparam("event_ids", expanding=True)))
    .values(relayed_at=bindparam("relayed_now"))
)


def _take_unrelayed(session: Session, limit: int) -> Sequence[Row[Any]]:
    return session.execute(_TAKE_UNRELAYED, {"limit": limit}).all()


def _endpoints_by_organisation(session: Session, organisation_ids: set[int]) -> dict[int, list[WebhookEndpoint]]:
    found = session.scalars(_LIVE_ENDPOINTS, {"organisation_ids": list(organisation_ids)})
    grouped: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    for endpoint in found:
        grouped[endpoint.organisation_id].append(endpoint)
    return grouped


def _wants(endpoint: WebhookEndpoint, event: Row[Any]) -> bool:
    # An endpoint made after the event (e.g. while the relay was behind) does not get it.
    if endpoint.created_at > event.created_at:
        return False
    if event.type == "endpoint.disabled" and event.data.get("endpoint_id") == endpoint.id:
        return False
    return matches(endpoint.event_types, event.type)


def _new_delivery(
    event: OutboxEvent | Row[Any], endpoint: WebhookEndpoint, now: datetime, *, due: datetime | None = None
) -> dict[str, Any]:
    return {
        "organisation_id": event.organisation_id,
        "endpoint_id": endpoint.id,
        "event_id": event.id,
        "event_seq": event.seq,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now if due is None else due,
        "created_at": now,
    }


_INSERT_DELIVERIES = text(
    """
    INSERT INTO deliveries
        (organisation_id, endpoint_id, event_id, event_seq, status, attempts, next_attempt_at, created_at)
    SELECT organisation_id, endpoint_id, event_id, event_seq, 'pending', 0, next_attempt_at, created_at
    FROM unnest(
        CAST(:organisation_ids AS bigint[]), CAST(:endpoint_ids AS bigint[]), CAST(:event_ids AS text[]),
        CAST(:event_seqs AS bigint[]), CAST(:next_attempt_ats AS timestamptz[]), CAST(:created_ats AS timestamptz[])
    ) AS new (organisation_id, endpoint_id, event_id, event_seq, next_attempt_at, created_at)
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING id, endpoint_id, event_id
    """
)


def _insert_missing(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """Insert the deliveries that do not exist yet; (id, endpoint_id, event_id) of those inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # One statement with one array a column, whatever the number of rows (the relay makes hundreds).
        found = session.execute(
            _INSERT_DELIVERIES,
            {
                "organisation_ids": [row["organisation_id"] for row in rows],
                "endpoint_ids": [row["endpoint_id"] for row in rows],
                "event_ids": [row["event_id"] for row in rows],
                "event_seqs": [row["event_seq"] for row in rows],
                "next_attempt_ats": [row["next_attempt_at"] for row in rows],
                "created_ats": [row["created_at"] for row in rows],
            },
        )
        return [(row[0], row[1], row[2]) for row in found]
    statement = (
        sqlite.insert(Delivery)
        .on_conflict_do_nothing(index_elements=[Delivery.endpoint_id, Delivery.event_id])
        .returning(Delivery.id, Delivery.endpoint_id, Delivery.event_id)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(statement, rows)]


# --- attempts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryJob:
    """Everything the sender needs for one attempt, read at once."""

    delivery_id: int
    attempts: int  # made so far in this round
    organisation_id: int
    endpoint_id: int
    url: str
    payload_format: PayloadFormat
    kind: EndpointKind
    paused: bool
    disabled: bool
    secret_encrypted: str
    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None
    event_id: str
    event_type: str
    event_seq: int
    event_created_at: datetime
    event_data: dict[str, Any]


@dataclass(frozen=True)
class AttemptOutcome:
    """What one HTTP attempt gave. `gone`: the receiver answered 410; `retry_after` in seconds."""

    status_code: int | None
    duration_ms: int
    response_excerpt: str = ""
    error: str | None = None
    retry_after: float | None = None
    gone: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class AttemptResult:
    """Where a delivery stands after an attempt was recorded.

    `endpoint_disabled` / `endpoint_deleted`: this attempt disabled the endpoint (410, or failing
    for FAILING_DISABLE_AFTER) or deleted the REST hook (410); the caller stops sending to it.
    """

    state: Literal["succeeded", "retry", "exhausted"]
    attempts: int
    next_attempt_at: datetime | None = None
    endpoint_disabled: bool = False
    endpoint_deleted: bool = False


def attempt_context(session: Session, delivery_id: int) -> DeliveryJob | None:
    """The delivery, its endpoint and its event in one read; None when the delivery is gone or finished."""
    jobs = attempt_contexts(session, [delivery_id])
    return jobs[0] if jobs else None


_JOB_COLUMNS = (
    Delivery.id,
    Delivery.attempts,
    Delivery.organisation_id,
    WebhookEndpoint.id,
    WebhookEndpoint.url,
    WebhookEndpoint.payload_format,
    WebhookEndpoint.kind,
    WebhookEndpoint.paused,
    WebhookEndpoint.disabled_at.is_not(None),
    WebhookEndpoint.secret_encrypted,
    WebhookEndpoint.previous_secret_encrypted,
    WebhookEndpoint.previous_secret_expires_at,
    OutboxEvent.id,
    OutboxEvent.type,
    OutboxEvent.seq,
    OutboxEvent.created_at,
    OutboxEvent.data,
)


_READ_JOBS = (
    select(*_JOB_COLUMNS)
    .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
    .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
    .where(Delivery.id.in_(bindparam("delivery_ids", expanding=True)), Delivery.status == DeliveryStatus.PENDING)
)


def attempt_contexts(session: Session, delivery_ids: Sequence[int]) -> list[DeliveryJob]:
    """`attempt_context` for several deliveries in one read: the pending ones, in the order given."""
    if not delivery_ids:
        return []
    rows = session.execute(_READ_JOBS, {"delivery_ids": list(delivery_ids)}).all()
    found = {row[0]: DeliveryJob(*row) for row in rows}
    return [found[delivery_id] for delivery_id in dict.fromkeys(delivery_ids) if delivery_id in found]


# Core statements on the tables, built once: the ORM's bulk paths cost more than the database does here.
_deliveries, _endpoints = _table(Delivery), _table(WebhookEndpoint)
_PENDING_LOCKED = (
    select(_deliveries.c.id)
    .where(
        _deliveries.c.id.in_(bindparam("delivery_ids", expanding=True)),
        _deliveries.c.status == DeliveryStatus.PENDING,
    )
    .order_by(_deliveries.c.id)
    .with_for_update()
)
_SUCCEED = (
    update(_deliveries)
    .where(_deliveries.c.id.in_(_PENDING_LOCKED.scalar_subquery()), _deliveries.c.status == DeliveryStatus.PENDING)
    .values(
        status=DeliveryStatus.SUCCEEDED,
        attempts=_deliveries.c.attempts + 1,
        last_attempt_at=bindparam("succeeded_at"),
        last_status_code=bindparam("status_code"),
        delivered_at=bindparam("succeeded_at"),
        next_attempt_at=None,
    )
    .returning(_deliveries.c.id, _deliveries.c.endpoint_id)
)
# Conditional, so a busy healthy endpoint's row is not written (and locked) on every batch.
_NOT_FAILING = (
    update(_endpoints)
    .where(_endpoints.c.id.in_(bindparam("endpoint_ids", expanding=True)), _endpoints.c.failing_since.is_not(None))
    .values(failing_since=None)
)
_LOG_ATTEMPTS = insert(_table(DeliveryAttempt))


def record_successes(session: Session, successes: Sequence[tuple[int, AttemptOutcome]], *, now: datetime) -> list[int]:
    """Record 2xx attempts of several deliveries at `now` in a few statements, whatever their number.

    What `record_attempt` does for a success: the attempt is logged, the delivery succeeded, its
    endpoint is no longer failing. Deliveries no longer pending (finished meanwhile, or gone with
    their endpoint) are left alone; returns the ids of those recorded. Rows are locked in id order,
    so two batches sharing deliveries (a job delivered twice) queue up instead of deadlocking.
    """
    if any(not outcome.succeeded for _, outcome in successes):
        raise ValueError("record_successes takes 2xx outcomes only; record_attempt decides on the others")
    outcomes = dict(successes)
    recorded: list[int] = []
    by_status: dict[int | None, list[int]] = defaultdict(list)
    for delivery_id, outcome in outcomes.items():
        by_status[outcome.status_code].append(delivery_id)
    for status_code, delivery_ids in by_status.items():
        rows = session.execute(
            _SUCCEED, {"delivery_ids": delivery_ids, "succeeded_at": now, "status_code": status_code}
        ).all()
        recorded.extend(row[0] for row in rows)
        endpoint_ids = {row[1] for row in rows}
        if endpoint_ids:
            session.execute(_NOT_FAILING, {"endpoint_ids": list(endpoint_ids)})
    if recorded:
        session.execute(
            _LOG_ATTEMPTS,
            [
                {
                    "delivery_id": delivery_id,
                    "attempted_at": now,
                    "status_code": outcomes[delivery_id].status_code,
                    "duration_ms": max(outcomes[delivery_id].duration_ms, 0),
                    "response_excerpt": _excerpt(outcomes[delivery_id].response_excerpt),
                    "error": None,
                    "succeeded": True,
                }
                for delivery_id in sorted(recorded)
            ],
        )
    return recorded


def record_attempt(
    session: Session,
    delivery_id: int,
    outcome: AttemptOutcome,
    *,
    now: datetime,
    delays: Sequence[float],
    jitter: float = 0.2,
    rng: Callable[[], float] = random.random,
) -> AttemptResult:
    """Log one attempt of a delivery and decide what follows.

    2xx: the delivery succeeded and the endpoint is no longer failing. Otherwise, with n attempts
    made in this round: a 410 (`outcome.gone`) disables a webhook endpoint or deletes a REST hook
    (recording `endpoint.disabled` or `hook.deleted`) and exhausts the delivery; else the next
    attempt is due after `delays[n]` ±`jitter` (never sooner than `retry_after`), or the delivery is
    exhausted when the delays run out. An endpoint failing since FAILING_DISABLE_AFTER ago is
    disabled. A delivery already finished is left alone and its state returned. NotFound when the
    delivery no longer exists.
    """
    if outcome.gone:
        _lock_endpoint_of(session, delivery_id)
    delivery = session.scalars(
        select(Delivery).where(Delivery.id == delivery_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    if delivery.status is not DeliveryStatus.PENDING:
        state: Literal["succeeded", "exhausted"] = (
            "succeeded" if delivery.status is DeliveryStatus.SUCCEEDED else "exhausted"
        )
        return AttemptResult(state, delivery.attempts)
    endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
    if outcome.gone and not outcome.succeeded and endpoint.kind is EndpointKind.REST_HOOK:
        # The subscription goes with its deliveries and their log: nothing of it is left to update.
        attempts = delivery.attempts + 1
        session.expunge(delivery)
        _delete_hook(session, endpoint)
        return AttemptResult("exhausted", attempts, endpoint_deleted=True)
    _log_attempt(session, delivery, outcome, now)
    if outcome.succeeded:
        _succeed(session, delivery, endpoint, now)
        return AttemptResult("succeeded", delivery.attempts)
    failing_since = _mark_failing(session, endpoint, now)
    reason = "gone" if outcome.gone else "failing" if now - failing_since > FAILING_DISABLE_AFTER else None
    if reason is not None:
        _exhaust(delivery)
        return AttemptResult("exhausted", delivery.attempts, endpoint_disabled=_disable(session, endpoint, reason, now))
    if delivery.attempts >= len(delays):
        _exhaust(delivery)
        return AttemptResult("exhausted", delivery.attempts)
    wait = _retry_wait(delays[delivery.attempts], jitter, rng, outcome.retry_after)
    delivery.next_attempt_at = now + timedelta(seconds=wait)
    return AttemptResult("retry", delivery.attempts, delivery.next_attempt_at)


def _lock_endpoint_of(session: Session, delivery_id: int) -> None:
    """Lock the delivery's endpoint before the delivery itself.

    A 410 may delete a REST hook, and with it every delivery of the hook; several 410s for one hook
    at once would each hold their own delivery and wait for the others' (a deadlock). Taking the
    endpoint first makes them queue up: the first deletes, the others find their delivery gone.
    """
    session.execute(
        select(WebhookEndpoint.id)
        .join(Delivery, Delivery.endpoint_id == WebhookEndpoint.id)
        .where(Delivery.id == delivery_id)
        .with_for_update(of=WebhookEndpoint)
    )


def _log_attempt(session: Session, delivery: Delivery, outcome: AttemptOutcome, now: datetime) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status_code
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=outcome.status_code,
            duration_ms=max(outcome.duration_ms, 0),
            response_excerpt=_excerpt(outcome.response_excerpt),
            error=None if outcome.error is None else _excerpt(outcome.error),
            succeeded=outcome.succeeded,
        )
    )


def _excerpt(text: str) -> str:
    """At most EXCERPT_BYTES of UTF-8, cut on a character boundary; NUL removed (PostgreSQL text refuses it)."""
    cut = text.replace("\x00", "").encode("utf-8", "replace")[:EXCERPT_BYTES]
    return cut.decode("utf-8", "ignore")


def _succeed(session: Session, delivery: Delivery, endpoint: WebhookEndpoint, now: datetime) -> None:
    delivery.status = DeliveryStatus.SUCCEEDED
    delivery.delivered_at = now
    delivery.next_attempt_at = None
    if endpoint.failing_since is not None:
        # Conditional, so a busy healthy endpoint's row is not written (and locked) on every success.
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )


def _mark_failing(session: Session, endpoint: WebhookEndpoint, now: datetime) -> datetime:
    """The start of the endpoint's failing streak, starting it at `now` if this failure is the first."""
    if endpoint.failing_since is None:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
        )
    return endpoint.failing_since or now


def _exhaust(delivery: Delivery) -> None:
    delivery.status = DeliveryStatus.EXHAUSTED
    delivery.next_attempt_at = None


def _retry_wait(delay: float, jitter: float, rng: Callable[[], float], retry_after: float | None) -> float:
    jittered = delay * (1 + jitter * (2 * rng() - 1))
    asked = min(max(retry_after or 0.0, 0.0), MAX_RETRY_AFTER)
    return max(jittered, asked, 0.0)


def _disable(session: Session, endpoint: WebhookEndpoint, reason: str, now: datetime) -> bool:
    """Disable the endpoint unless it already is; only the caller that disables it records the event."""
    disabled = session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason)
        .returning(WebhookEndpoint.id)
    ).first()
    if disabled is None:
        return False
    outbox.record(
        session,
        endpoint.organisation_id,
        "endpoint.disabled",
        {"endpoint_id": endpoint.id, "url": _shown_url(endpoint.url), "reason": reason},
    )
    return True


def _delete_hook(session: Session, endpoint: WebhookEndpoint) -> None:
    outbox.record(session, endpoint.organisation_id, "hook.deleted", {**_describe(endpoint), "reason": "gone"})
    session.delete(endpoint)
    session.flush()


def due_deliveries(session: Session, *, now: datetime, limit: int = 1000) -> list[int]:
    """Pending deliveries due by `now` whose endpoint is neither paused nor disabled, soonest first.

    The scheduler's safety net for deliveries whose job was lost or whose retry is far off. Whoever
    enqueues a delivery `lease`s it, so that the sweep leaves it to its job meanwhile.
    """
    return [delivery_id for _, delivery_id in due_deliveries_of_endpoints(session, now=now, limit=limit)]


def due_deliveries_of_endpoints(session: Session, *, now: datetime, limit: int = 1000) -> list[tuple[int, int]]:
    """As `due_deliveries`, as (endpoint id, delivery id)."""
    return [
        (row[0], row[1])
        for row in session.execute(
            select(Delivery.endpoint_id, Delivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                WebhookEndpoint.paused.is_(False),
                WebhookEndpoint.disabled_at.is_(None),
            )
            .order_by(Delivery.next_attempt_at.asc().nulls_first(), Delivery.event_seq, Delivery.id)
            .limit(limit)
            # Two sweeps at once (a scheduler handing over) take different deliveries.
            .with_for_update(of=Delivery, skip_locked=True)
        )
    ]


def lease(session: Session, delivery_ids: Sequence[int], *, until: datetime) -> None:
    """Hold pending deliveries away from `due_deliveries` until `until` (bookkeeping: no event).

    For deliveries just enqueued: if their job is lost (a worker killed, a broker emptied), the
    sweep finds them again once the lease runs out. An attempt's outcome sets the next time anew.
    """
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PENDING)
            .values(next_attempt_at=until)
        )


# --- the deliveries log and replays ------------------------------------------------------------


def select_deliveries(
    organisation_id: int,
    *,
    endpoint_id: int | None = None,
    event_id: str | None = None,
    status: str | None = None,
) -> Select[Delivery]:
    """The organisation's deliveries, narrowed to one endpoint, one event and one status, unordered."""
    query = select(Delivery).where(Delivery.organisation_id == organisation_id)
    if endpoint_id is not None:
        query = query.where(Delivery.endpoint_id == endpoint_id)
    if event_id is not None:
        query = query.where(Delivery.event_id == event_id)
    if status is not None:
        try:
            wanted = DeliveryStatus(status)
        except ValueError:
            names = ", ".join(member.value for member in DeliveryStatus)
            raise Invalid(f"status must be one of {names}", field="status") from None
        query = query.where(Delivery.status == wanted)
    return query


def attempts_of(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[DeliveryAttempt]]:
    """Each delivery's attempts, oldest first (an empty list for one never attempted)."""
    found: dict[int, list[DeliveryAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if found:
        query = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(found))
            .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
        )
        for attempt in session.scalars(query):
            found[attempt.delivery_id].append(attempt)
    return found


def replay_event(session: Session, endpoint: WebhookEndpoint, event_id: str, *, now: datetime) -> int:
    """Send one of the organisation's events to the endpoint again; returns the delivery's id.

    The delivery is made when there is none (the event predates the endpoint); a finished one starts
    a new round of attempts due at `now`, its attempt log kept. NotFound for an unknown event;
    NotAllowed when the endpoint is disabled or does not subscribe to the event's type.
    """
    _check_replayable(endpoint)
    event = session.get(OutboxEvent, event_id)
    if event is None or event.organisation_id != endpoint.organisation_id:
        raise NotFound(f"no event {event_id}")
    if not matches(endpoint.event_types, event.type):
        raise NotAllowed(f"this endpoint does not subscribe to {event.type}")
    _insert_missing(session, [_new_delivery(event, endpoint, now)])
    delivery = session.scalars(
        select(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.event_id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if delivery.status is DeliveryStatus.PENDING:
        delivery.next_attempt_at = now
    else:
        _new_round(delivery, now)
    return delivery.id


def replay_failed(session: Session, endpoint: WebhookEndpoint, *, since: datetime, now: datetime) -> list[int]:
    """Start a new round for every exhausted delivery of the endpoint created since `since`; ids in event order.

    NotAllowed when the endpoint is disabled.
    """
    _check_replayable(endpoint)
    exhausted = session.scalars(
        select(Delivery)
        .where(
            Delivery.endpoint_id == endpoint.id,
            Delivery.status == DeliveryStatus.EXHAUSTED,
            Delivery.created_at >= since,
        )
        .order_by(Delivery.event_seq, Delivery.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for delivery in exhausted:
        _new_round(delivery, now)
    return [delivery.id for delivery in exhausted]


def _check_replayable(endpoint: WebhookEndpoint) -> None:
    if endpoint.disabled_at is not None:
        raise NotAllowed("this endpoint is disabled; enable it before replaying")


def _new_round(delivery: Delivery, now: datetime) -> None:
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.delivered_at = None
