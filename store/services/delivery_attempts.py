"""Delivery attempts: what a job reads to send, and what its outcomes change.

A success ends the delivery and the endpoint's failing streak; a failure schedules the next attempt
(retry delays with jitter, never before Retry-After) or exhausts the delivery; a 410 disables a
webhook endpoint (`endpoint.disabled`) or deletes a REST hook (`hook.deleted`), and so does failing
for FAILING_DISABLE_AFTER. Attempts themselves record no event.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from store import outbox
from store.errors import NotFound
from store.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EndpointKind,
    OutboxEvent,
    PayloadFormat,
    SignatureScheme,
    WebhookEndpoint,
)
from store.services.webhook_endpoints import describe, shown_url

FAILING_DISABLE_AFTER = timedelta(days=5)
EXCERPT_BYTES = 1024
MAX_RETRY_AFTER = 24 * 3600.0  # seconds: a receiver cannot park a delivery for longer


class DeliveryJob(NamedTuple):
    """Everything the sender needs for one attempt, read at once (a named tuple: a job reads hundreds,
    and a frozen dataclass's constructor cost more than the rest of reading them)."""

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
    signature: SignatureScheme
    private_key_encrypted: str | None
    ordered: bool  # one request at a time, in event order; a failure holds the later ones
    rate_limit_per_second: int | None


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
    WebhookEndpoint.signature,
    WebhookEndpoint.private_key_encrypted,
    WebhookEndpoint.ordered,
    WebhookEndpoint.rate_limit_per_second,
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


def ordered_head(session: Session, endpoint_id: int, *, now: datetime, limit: int) -> list[DeliveryJob]:
    """An ordered endpoint's pending deliveries in event order, from its first pending one, while that
    one is due (`due_at` reached) and the endpoint neither paused nor disabled; none otherwise (a
    failed first delivery holds the others back until its retry succeeds or it is exhausted)."""
    rows = session.execute(
        select(Delivery.id, Delivery.due_at)
        .where(Delivery.endpoint_id == endpoint_id, Delivery.status == DeliveryStatus.PENDING)
        .order_by(Delivery.event_seq, Delivery.id)
        .limit(limit)
    ).all()
    if not rows or (rows[0][1] is not None and rows[0][1] > now):
        return []
    jobs = attempt_contexts(session, [row[0] for row in rows])
    if not jobs or jobs[0].paused or jobs[0].disabled:
        return []
    return jobs


# Core statements on the tables, built once: the ORM's bulk paths cost more than the database does here.
_deliveries: Table = Delivery.__table__  # type: ignore[assignment]
_endpoints: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
_attempts: Table = DeliveryAttempt.__table__  # type: ignore[assignment]
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
        due_at=None,
    )
    .returning(_deliveries.c.id, _deliveries.c.endpoint_id)
)
# Conditional, so a busy healthy endpoint's row is not written (and locked) on every batch.
_NOT_FAILING = (
    update(_endpoints)
    .where(_endpoints.c.id.in_(bindparam("endpoint_ids", expanding=True)), _endpoints.c.failing_since.is_not(None))
    .values(failing_since=None)
)
_LOG_ATTEMPTS = insert(_attempts)
# On PostgreSQL all of the above in one statement (one round trip however many deliveries): the rows
# locked in id order, the deliveries succeeded, their endpoints no longer failing, their attempts logged.
_SUCCEED_ALL = text(
    """
    WITH locked AS (
        SELECT id FROM deliveries WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'pending' ORDER BY id FOR UPDATE
    ), outcome AS (
        SELECT * FROM unnest(
            CAST(:ids AS bigint[]), CAST(:status_codes AS int[]), CAST(:durations AS int[]), CAST(:excerpts AS text[])
        ) AS outcome (id, status_code, duration_ms, excerpt)
    ), done AS (
        UPDATE deliveries SET status = 'succeeded', attempts = deliveries.attempts + 1, last_attempt_at = :now,
            last_status_code = outcome.status_code, delivered_at = :now, next_attempt_at = NULL, due_at = NULL
        FROM outcome
        WHERE deliveries.id = outcome.id AND deliveries.id IN (SELECT id FROM locked) AND deliveries.status = 'pending'
        RETURNING deliveries.id, deliveries.endpoint_id, outcome.status_code, outcome.duration_ms, outcome.excerpt
    ), healthy AS (
        UPDATE webhook_endpoints SET failing_since = NULL
        WHERE id IN (SELECT endpoint_id FROM done) AND failing_since IS NOT NULL
    )
    INSERT INTO delivery_attempts
        (delivery_id, attempted_at, status_code, duration_ms, response_excerpt, error, succeeded)
    SELECT id, :now, status_code, duration_ms, excerpt, NULL, true FROM done ORDER BY id
    RETURNING delivery_id
    """
)


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
    if not outcomes:
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = list(outcomes)
        found = session.execute(
            _SUCCEED_ALL,
            {
                "ids": ids,
                "status_codes": [outcomes[delivery_id].status_code for delivery_id in ids],
                "durations": [max(outcomes[delivery_id].duration_ms, 0) for delivery_id in ids],
                "excerpts": [_excerpt(outcomes[delivery_id].response_excerpt) for delivery_id in ids],
                "now": now,
            },
        )
        return [row[0] for row in found]
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
    delivery.next_attempt_at = delivery.due_at = now + timedelta(seconds=wait)
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
    delivery.next_attempt_at = delivery.due_at = None
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
    delivery.next_attempt_at = delivery.due_at = None


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
        {"endpoint_id": endpoint.id, "url": shown_url(endpoint.url), "reason": reason},
    )
    return True


def _delete_hook(session: Session, endpoint: WebhookEndpoint) -> None:
    outbox.record(session, endpoint.organisation_id, "hook.deleted", {**describe(endpoint), "reason": "gone"})
    session.delete(endpoint)
    session.flush()
