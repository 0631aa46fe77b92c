"""From outbox events to deliveries: the relay, attempts and retries, disabling, the log and replays."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import make_engine, make_session_factory, one_statement, transaction
from store.errors import Invalid, NotAllowed, NotFound
from store.migrate import upgrade
from store.models import Delivery, DeliveryAttempt, DeliveryStatus, OutboxEvent, WebhookEndpoint
from store.secret_box import SecretBox
from store.services import (
    deliveries,
    delivery_attempts,
    delivery_replays,
    desks,
    outbox_relay,
    webhook_endpoints,
    webhook_secrets,
)
from store.services.delivery_attempts import AttemptOutcome
from tests.conftest import Org, make_org, postgres_database
from tests.store.conftest import Outbox, make_desk, refused

URL = "https://receiver.example/hooks"
DELAYS = (0.0, 5.0, 300.0)
OK = AttemptOutcome(status_code=200, duration_ms=12, response_excerpt="thanks")
FAIL = AttemptOutcome(status_code=500, duration_ms=30, response_excerpt="oops")


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([SecretBox.generate_key()])


def endpoint(factory: sessionmaker[Session], org: Org, box: SecretBox, **options: Any) -> int:
    with transaction(factory) as session:
        made, _ = webhook_endpoints.create_endpoint(
            session, org.organisation.id, options.pop("url", URL), box=box, **options
        )
        return made.id


def relay(factory: sessionmaker[Session], *, now: datetime | None = None, limit: int = 500) -> list[int]:
    with transaction(factory) as session:
        return outbox_relay.relay(session, limit=limit, now=now or utcnow())


def delivery_rows(factory: sessionmaker[Session], endpoint_id: int) -> list[Delivery]:
    with factory() as session:
        query = select(Delivery).where(Delivery.endpoint_id == endpoint_id).order_by(Delivery.event_seq)
        return list(session.scalars(query))


def event_types_of(factory: sessionmaker[Session], endpoint_id: int) -> list[str]:
    with factory() as session:
        query = (
            select(OutboxEvent.type)
            .join(Delivery, Delivery.event_id == OutboxEvent.id)
            .where(Delivery.endpoint_id == endpoint_id)
            .order_by(Delivery.event_seq)
        )
        return list(session.scalars(query))


def load(factory: sessionmaker[Session], entity: type[Any], id_: int) -> Any:
    with factory() as session:
        return session.get(entity, id_)


def attempt(
    factory: sessionmaker[Session],
    delivery_id: int,
    outcome: AttemptOutcome,
    *,
    now: datetime,
    delays: Sequence[float] = DELAYS,
    rng: Any = lambda: 0.5,
) -> delivery_attempts.AttemptResult:
    with transaction(factory) as session:
        return delivery_attempts.record_attempt(session, delivery_id, outcome, now=now, delays=delays, rng=rng)


def update_endpoint(factory: sessionmaker[Session], org: Org, endpoint_id: int, **changes: Any) -> list[int]:
    with transaction(factory) as session:
        found = webhook_endpoints.get_endpoint(session, org.organisation.id, endpoint_id)
        return webhook_endpoints.update_endpoint(session, found, **changes)[1]


def desk_events(factory: sessionmaker[Session], org: Org, *labels: str) -> None:
    """One desk.created event per label, each in its own transaction (so in sequence order)."""
    for label in labels:
        make_desk(factory, org, label)


@pytest.fixture
def drained(session_factory: sessionmaker[Session], acme: Org) -> Org:
    """acme, with the events of its set-up relayed (to nobody)."""
    assert relay(session_factory) == []
    return acme


# --- relay ---------------------------------------------------------------------------------------


def test_relay_makes_one_delivery_per_matching_endpoint(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    first = endpoint(session_factory, drained, box)
    second = endpoint(session_factory, drained, box, event_types=["desk.*"])
    desk_events(session_factory, drained, "A", "B")
    now = utcnow()
    due = relay(session_factory, now=now)
    made = delivery_rows(session_factory, first) + delivery_rows(session_factory, second)
    assert sorted(due) == sorted(delivery.id for delivery in made)
    assert len(made) == 6  # first: both endpoints' creation and two desks; second: two desks
    assert event_types_of(session_factory, second) == ["desk.created", "desk.created"]
    for delivery in made:
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.PENDING, 0, now)
        assert delivery.organisation_id == drained.organisation.id
    with session_factory() as session:
        events = {event.id: event for event in session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))}
    assert [event.type for event in events.values() if event.relayed_at == now] == [
        "endpoint.created",
        "endpoint.created",
        "desk.created",
        "desk.created",
    ]
    assert all(event.relayed_at is not None for event in events.values())
    for delivery in made:
        assert delivery.event_seq == events[delivery.event_id].seq


def test_relay_returns_due_deliveries_in_event_order(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C", "D")
    due = relay(session_factory)
    assert due == [delivery.id for delivery in delivery_rows(session_factory, endpoint_id)]
    with session_factory() as session:
        labels = [
            session.get_one(OutboxEvent, load(session_factory, Delivery, delivery_id).event_id).data["label"]
            for delivery_id in due
        ]
    assert labels == ["A", "B", "C", "D"]


def test_relay_twice_makes_nothing_new(session_factory: sessionmaker[Session], drained: Org, box: SecretBox) -> None:
    endpoint_id = endpoint(session_factory, drained, box)
    desk_events(session_factory, drained, "A", "B")
    first = relay(session_factory)
    assert len(first) == 3
    assert relay(session_factory) == []
    # At-least-once: an event relayed whose mark was lost is relayed again without a duplicate.
    with transaction(session_factory) as session:
        session.execute(update(OutboxEvent).values(relayed_at=None))
    assert relay(session_factory) == []
    assert [delivery.id for delivery in delivery_rows(session_factory, endpoint_id)] == first


def test_relay_respects_the_limit_oldest_first(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    # The endpoint's own creation event is the oldest unrelayed one; it matches nothing here.
    assert len(relay(session_factory, limit=2)) == 1
    assert len(relay(session_factory, limit=2)) == 2
    assert relay(session_factory, limit=2) == []
    assert len(delivery_rows(session_factory, endpoint_id)) == 3


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ([], ["desk.created", "desk.updated", "desk.deleted"]),
        (["*"], ["desk.created", "desk.updated", "desk.deleted"]),
        (["desk.*"], ["desk.created", "desk.updated", "desk.deleted"]),
        (["desk.updated"], ["desk.updated"]),
        (["desk.created", "desk.deleted"], ["desk.created", "desk.deleted"]),
        (["booking.*"], []),
    ],
)
def test_relay_follows_the_patterns(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox, patterns: list[str], expected: list[str]
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=patterns)
    relay(session_factory)
    for made in delivery_rows(session_factory, endpoint_id):  # its own endpoint.created, for the catch-alls
        with transaction(session_factory) as session:
            session.delete(session.get_one(Delivery, made.id))
    desk_id = make_desk(session_factory, drained, "A")
    with transaction(session_factory) as session:
        desk = desks.get(session, drained.organisation.id, desk_id)
        desks.update(session, desk, label="B")
    with transaction(session_factory) as session:
        desks.delete(session, desks.get(session, drained.organisation.id, desk_id))
    relay(session_factory)
    assert event_types_of(session_factory, endpoint_id) == expected


def test_other_organisations_endpoints_get_nothing(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    globex = make_org(session_factory, "Globex")
    theirs = endpoint(session_factory, globex, box, event_types=["desk.*"])
    relay(session_factory)
    desk_events(session_factory, drained, "A")
    assert relay(session_factory) == []
    assert delivery_rows(session_factory, theirs) == []


def test_an_endpoint_does_not_get_events_older_than_itself(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    desk_events(session_factory, drained, "Before")
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "After")
    relay(session_factory)
    [made] = delivery_rows(session_factory, endpoint_id)
    with session_factory() as session:
        assert session.get_one(OutboxEvent, made.event_id).data["label"] == "After"


def test_paused_endpoints_collect_deliveries_that_wait(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    paused = endpoint(session_factory, drained, box, event_types=["desk.created"], paused=True)
    live = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    now = utcnow()
    due = relay(session_factory, now=now)
    waiting = delivery_rows(session_factory, paused)
    assert len(waiting) == 3
    assert due == [delivery.id for delivery in delivery_rows(session_factory, live)]
    with session_factory() as session:
        assert set(deliveries.due_deliveries(session, now=now)) == set(due)
        assert delivery_attempts.attempt_context(session, waiting[0].id) is not None

    resume_at = now + timedelta(minutes=1)
    assert update_endpoint(session_factory, drained, paused, paused=False, now=resume_at) == [
        delivery.id for delivery in waiting
    ]
    assert {delivery.next_attempt_at for delivery in delivery_rows(session_factory, paused)} == {resume_at}
    with session_factory() as session:
        assert set(deliveries.due_deliveries(session, now=resume_at)) == set(due) | {d.id for d in waiting}
    assert update_endpoint(session_factory, drained, paused, paused=False) == []


def test_resume_leaves_finished_deliveries_alone(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B")
    first, second = relay(session_factory)
    attempt(session_factory, first, OK, now=utcnow())
    update_endpoint(session_factory, drained, endpoint_id, paused=True)
    assert update_endpoint(session_factory, drained, endpoint_id, paused=False) == [second]


def test_disabled_endpoints_get_nothing(session_factory: sessionmaker[Session], drained: Org, box: SecretBox) -> None:
    endpoint_id = endpoint(session_factory, drained, box)
    relay(session_factory)
    with transaction(session_factory) as session:
        session.execute(update(WebhookEndpoint).values(disabled_at=utcnow(), disabled_reason="gone"))
    before = len(delivery_rows(session_factory, endpoint_id))
    desk_events(session_factory, drained, "A")
    assert relay(session_factory) == []
    assert len(delivery_rows(session_factory, endpoint_id)) == before


def test_endpoint_disabled_goes_to_the_others_only(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    dying = endpoint(session_factory, drained, box, event_types=["desk.created", "endpoint.*"])
    watcher = endpoint(session_factory, drained, box, event_types=["endpoint.disabled"])
    other = endpoint(session_factory, drained, box, event_types=["endpoint.*"])
    desk_events(session_factory, drained, "A")
    relay(session_factory)
    assert event_types_of(session_factory, dying) == ["endpoint.created"] * 3 + ["desk.created"]
    desk_delivery = delivery_rows(session_factory, dying)[-1]
    result = attempt(session_factory, desk_delivery.id, AttemptOutcome(410, 5, gone=True), now=utcnow())
    assert result.endpoint_disabled
    # Enabled again before the relay runs: it must still not be told about its own disabling.
    with transaction(session_factory) as session:
        webhook_endpoints.enable_endpoint(
            session, webhook_endpoints.get_endpoint(session, drained.organisation.id, dying)
        )
    relay(session_factory)
    assert event_types_of(session_factory, dying)[-1] == "endpoint.enabled"
    assert "endpoint.disabled" not in event_types_of(session_factory, dying)
    assert event_types_of(session_factory, watcher) == ["endpoint.disabled"]
    assert event_types_of(session_factory, other)[-2:] == ["endpoint.disabled", "endpoint.enabled"]


def test_relay_and_attempts_record_no_events(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A")
    with session_factory() as session:
        before = session.scalar(select(func.count()).select_from(OutboxEvent))
    [delivery_id] = relay(session_factory)
    attempt(session_factory, delivery_id, FAIL, now=utcnow())
    attempt(session_factory, delivery_id, OK, now=utcnow())
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == before
        assert session.scalar(select(func.count()).where(OutboxEvent.relayed_at.is_(None))) == 0


def test_has_and_oldest_unrelayed(session_factory: sessionmaker[Session], drained: Org, box: SecretBox) -> None:
    with session_factory() as session:
        assert outbox_relay.has_unrelayed(session) is False
        assert outbox_relay.oldest_unrelayed(session) is None
    desk_events(session_factory, drained, "A", "B")
    with session_factory() as session:
        written = sorted(session.scalars(select(OutboxEvent.created_at).where(OutboxEvent.relayed_at.is_(None))))
        assert outbox_relay.has_unrelayed(session) is True
        assert outbox_relay.oldest_unrelayed(session) == written[0]
    relay(session_factory, limit=1)
    with session_factory() as session:
        assert outbox_relay.has_unrelayed(session) is True
        assert outbox_relay.oldest_unrelayed(session) == written[1]
    with transaction(session_factory) as session:
        outbox_relay.relay(session, now=utcnow())
        assert outbox_relay.has_unrelayed(session) is False  # what this relay took counts as relayed
    with session_factory() as session:
        assert outbox_relay.oldest_unrelayed(session) is None


# --- attempt context -----------------------------------------------------------------------------


def test_attempt_context_reads_everything_the_sender_needs(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    with transaction(session_factory) as session:
        made, secret = webhook_endpoints.create_endpoint(
            session, drained.organisation.id, URL, box=box, event_types=["desk.created"], payload_format="array"
        )
    desk_events(session_factory, drained, "A")
    [delivery_id] = relay(session_factory)
    with session_factory() as session:
        job = delivery_attempts.attempt_context(session, delivery_id)
        event = session.get_one(OutboxEvent, load(session_factory, Delivery, delivery_id).event_id)
    assert job is not None
    assert (job.delivery_id, job.attempts, job.organisation_id, job.endpoint_id) == (
        delivery_id,
        0,
        drained.organisation.id,
        made.id,
    )
    assert (job.url, job.payload_format, job.kind, job.paused, job.disabled) == (URL, "array", "webhook", False, False)
    assert (job.event_id, job.event_type, job.event_seq, job.event_created_at, job.event_data) == (
        event.id,
        "desk.created",
        event.seq,
        event.created_at,
        event.data,
    )
    assert webhook_secrets.signing_secrets(job, box, utcnow()) == [secret]


def test_attempt_context_is_none_for_missing_or_finished_deliveries(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B")
    succeeded, exhausted = relay(session_factory)
    attempt(session_factory, succeeded, OK, now=utcnow())
    attempt(session_factory, exhausted, FAIL, now=utcnow(), delays=(0.0,))
    with session_factory() as session:
        assert delivery_attempts.attempt_context(session, succeeded) is None
        assert delivery_attempts.attempt_context(session, exhausted) is None
        assert delivery_attempts.attempt_context(session, exhausted + 100) is None


# --- record_attempt ------------------------------------------------------------------------------


@pytest.fixture
def one(session_factory: sessionmaker[Session], drained: Org, box: SecretBox) -> tuple[int, int]:
    """(endpoint id, delivery id): one endpoint with one pending delivery."""
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A")
    [delivery_id] = relay(session_factory)
    return endpoint_id, delivery_id


def attempts_logged(factory: sessionmaker[Session], delivery_id: int) -> list[DeliveryAttempt]:
    with factory() as session:
        return deliveries.attempts_of(session, [delivery_id])[delivery_id]


def test_success_finishes_the_delivery(session_factory: sessionmaker[Session], one: tuple[int, int]) -> None:
    endpoint_id, delivery_id = one
    now = utcnow()
    result = attempt(session_factory, delivery_id, OK, now=now)
    assert result == delivery_attempts.AttemptResult("succeeded", 1)
    delivery = load(session_factory, Delivery, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.delivered_at, delivery.next_attempt_at) == (
        DeliveryStatus.SUCCEEDED,
        1,
        now,
        None,
    )
    assert (delivery.last_attempt_at, delivery.last_status_code) == (now, 200)
    [logged] = attempts_logged(session_factory, delivery_id)
    assert (logged.attempted_at, logged.status_code, logged.duration_ms, logged.succeeded) == (now, 200, 12, True)
    assert (logged.response_excerpt, logged.error) == ("thanks", None)
    assert load(session_factory, WebhookEndpoint, endpoint_id).failing_since is None


def test_a_duplicate_call_for_a_finished_delivery_changes_nothing(
    session_factory: sessionmaker[Session], one: tuple[int, int]
) -> None:
    _, delivery_id = one
    attempt(session_factory, delivery_id, OK, now=utcnow())
    assert attempt(session_factory, delivery_id, FAIL, now=utcnow()) == delivery_attempts.AttemptResult("succeeded", 1)
    assert attempt(session_factory, delivery_id, OK, now=utcnow()) == delivery_attempts.AttemptResult("succeeded", 1)
    assert len(attempts_logged(session_factory, delivery_id)) == 1
    assert load(session_factory, Delivery, delivery_id).status is DeliveryStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("rng", "expected_seconds"),
    [(0.0, 4.0), (0.5, 5.0), (1.0, 6.0)],
    ids=["low", "middle", "high"],
)
def test_failure_schedules_the_next_delay_with_jitter(
    session_factory: sessionmaker[Session], one: tuple[int, int], rng: float, expected_seconds: float
) -> None:
    endpoint_id, delivery_id = one
    now = utcnow()
    result = attempt(session_factory, delivery_id, FAIL, now=now, rng=lambda: rng)
    assert result == delivery_attempts.AttemptResult("retry", 1, now + timedelta(seconds=expected_seconds))
    delivery = load(session_factory, Delivery, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.PENDING,
        1,
        now + timedelta(seconds=expected_seconds),
    )
    assert (delivery.last_status_code, delivery.delivered_at) == (500, None)
    assert load(session_factory, WebhookEndpoint, endpoint_id).failing_since == now


def test_jitter_stays_within_its_bounds(session_factory: sessionmaker[Session], one: tuple[int, int]) -> None:
    _, delivery_id = one
    now = utcnow()
    attempt(session_factory, delivery_id, FAIL, now=now)  # -> attempts 1, next delay 5 s
    result = attempt(session_factory, delivery_id, FAIL, now=now, delays=(0, 5, 300, 1800))  # real rng
    assert result.next_attempt_at is not None
    assert timedelta(seconds=240) <= result.next_attempt_at - now <= timedelta(seconds=360)


@pytest.mark.parametrize(
    ("retry_after", "expected_seconds"),
    [(None, 5.0), (2.0, 5.0), (-3.0, 5.0), (120.0, 120.0), (10.0**9, 24 * 3600.0)],
    ids=["absent", "shorter", "negative", "longer", "capped"],
)
def test_retry_after_is_a_minimum(
    session_factory: sessionmaker[Session],
    one: tuple[int, int],
    retry_after: float | None,
    expected_seconds: float,
) -> None:
    _, delivery_id = one
    now = utcnow()
    outcome = AttemptOutcome(status_code=429, duration_ms=3, retry_after=retry_after)
    result = attempt(session_factory, delivery_id, outcome, now=now)
    assert result.next_attempt_at == now + timedelta(seconds=expected_seconds)


def test_exhausted_after_the_last_delay(session_factory: sessionmaker[Session], one: tuple[int, int]) -> None:
    _, delivery_id = one
    now = utcnow()
    timeout = AttemptOutcome(status_code=None, duration_ms=15000, error="timed out after 15 s")
    states = [attempt(session_factory, delivery_id, timeout, now=now).state for _ in range(3)]
    assert states == ["retry", "retry", "exhausted"]
    delivery = load(session_factory, Delivery, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.EXHAUSTED, 3, None)
    assert attempt(session_factory, delivery_id, OK, now=now) == delivery_attempts.AttemptResult("exhausted", 3)
    logged = attempts_logged(session_factory, delivery_id)
    assert [(a.status_code, a.error, a.succeeded) for a in logged] == [(None, "timed out after 15 s", False)] * 3


def test_success_after_failures_ends_the_failing_streak(
    session_factory: sessionmaker[Session], one: tuple[int, int]
) -> None:
    endpoint_id, delivery_id = one
    start = utcnow()
    for minutes in range(3):
        attempt(session_factory, delivery_id, FAIL, now=start + timedelta(minutes=minutes), delays=(0,) * 5)
    assert load(session_factory, WebhookEndpoint, endpoint_id).failing_since == start
    result = attempt(session_factory, delivery_id, OK, now=start + timedelta(minutes=3), delays=(0,) * 5)
    assert result == delivery_attempts.AttemptResult("succeeded", 4)
    assert load(session_factory, WebhookEndpoint, endpoint_id).failing_since is None
    assert [a.succeeded for a in attempts_logged(session_factory, delivery_id)] == [False, False, False, True]


def test_gone_disables_a_webhook(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox, outbox: Outbox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"], url="https://u:p@gone.example/")
    desk_events(session_factory, drained, "A", "B")
    first, second = relay(session_factory)
    outbox.skip()
    now = utcnow()
    result = attempt(session_factory, first, AttemptOutcome(410, 8, "bye", gone=True), now=now)
    assert result == delivery_attempts.AttemptResult("exhausted", 1, endpoint_disabled=True)
    stored = load(session_factory, WebhookEndpoint, endpoint_id)
    assert (stored.disabled_at, stored.disabled_reason) == (now, "gone")
    assert outbox.only("endpoint.disabled") == {
        "endpoint_id": endpoint_id,
        "url": "https://***@gone.example/",
        "reason": "gone",
    }
    assert load(session_factory, Delivery, first).status is DeliveryStatus.EXHAUSTED
    assert [a.status_code for a in attempts_logged(session_factory, first)] == [410]
    with session_factory() as session:
        assert deliveries.due_deliveries(session, now=now) == []
        job = delivery_attempts.attempt_context(session, second)
    assert job is not None
    assert job.disabled
    # A second 410 (a delivery already in flight) does not disable twice.
    outbox.skip()
    assert attempt(session_factory, second, AttemptOutcome(410, 8, gone=True), now=now).endpoint_disabled is False
    assert outbox.new() == []


def test_gone_deletes_a_rest_hook(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox, outbox: Outbox
) -> None:
    hook_id = endpoint(session_factory, drained, box, event_types=["desk.created"], kind="rest_hook")
    desk_events(session_factory, drained, "A")
    [delivery_id] = relay(session_factory)
    outbox.skip()
    result = attempt(session_factory, delivery_id, AttemptOutcome(410, 8, gone=True), now=utcnow())
    assert result == delivery_attempts.AttemptResult("exhausted", 1, endpoint_deleted=True)
    data = outbox.only("hook.deleted")
    assert (data["endpoint_id"], data["kind"], data["reason"]) == (hook_id, "rest_hook", "gone")
    assert load(session_factory, WebhookEndpoint, hook_id) is None
    assert load(session_factory, Delivery, delivery_id) is None
    with session_factory() as session:
        assert session.scalars(select(DeliveryAttempt)).all() == []
    with pytest.raises(NotFound), transaction(session_factory) as session:
        delivery_attempts.record_attempt(session, delivery_id, OK, now=utcnow(), delays=DELAYS)


def test_a_rest_hook_failing_otherwise_is_kept(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    hook_id = endpoint(session_factory, drained, box, event_types=["desk.created"], kind="rest_hook")
    desk_events(session_factory, drained, "A")
    [delivery_id] = relay(session_factory)
    assert attempt(session_factory, delivery_id, AttemptOutcome(404, 8), now=utcnow()).state == "retry"
    assert load(session_factory, WebhookEndpoint, hook_id) is not None


def test_failing_for_five_days_disables(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox, outbox: Outbox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    first, second, third = relay(session_factory)
    start = utcnow()
    attempt(session_factory, first, FAIL, now=start)
    almost = start + delivery_attempts.FAILING_DISABLE_AFTER - timedelta(seconds=1)
    assert attempt(session_factory, second, FAIL, now=almost).state == "retry"
    assert load(session_factory, WebhookEndpoint, endpoint_id).disabled_at is None
    outbox.skip()
    late = start + timedelta(days=5, seconds=1)
    result = attempt(session_factory, third, FAIL, now=late)
    assert result == delivery_attempts.AttemptResult("exhausted", 1, endpoint_disabled=True)
    stored = load(session_factory, WebhookEndpoint, endpoint_id)
    assert (stored.disabled_at, stored.disabled_reason, stored.failing_since) == (late, "failing", start)
    assert outbox.only("endpoint.disabled")["reason"] == "failing"


def test_a_success_in_between_restarts_the_five_days(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    first, second, third = relay(session_factory)
    start = utcnow()
    attempt(session_factory, first, FAIL, now=start)
    attempt(session_factory, second, OK, now=start + timedelta(days=4))
    late = start + timedelta(days=6)
    assert attempt(session_factory, third, FAIL, now=late).state == "retry"
    stored = load(session_factory, WebhookEndpoint, endpoint_id)
    assert (stored.disabled_at, stored.failing_since) == (None, late)


def test_excerpts_and_errors_are_capped_at_1_kib(session_factory: sessionmaker[Session], one: tuple[int, int]) -> None:
    _, delivery_id = one
    body = "é" * 600 + "\x00tail"  # 1,200 bytes of UTF-8 before the NUL
    outcome = AttemptOutcome(status_code=502, duration_ms=-1, response_excerpt=body, error="x\x00" + "y" * 5000)
    attempt(session_factory, delivery_id, outcome, now=utcnow())
    [logged] = attempts_logged(session_factory, delivery_id)
    assert logged.response_excerpt == "é" * 512
    assert logged.error is not None
    assert len(logged.error.encode()) == 1024
    assert logged.error.startswith("xyyy")
    assert logged.duration_ms == 0


def test_record_attempt_for_an_unknown_delivery(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, NotFound) as tried:
        delivery_attempts.record_attempt(tried.session, 12345, OK, now=utcnow(), delays=DELAYS)


# --- due deliveries ------------------------------------------------------------------------------


def test_due_deliveries_soonest_first_and_only_deliverable(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    live = endpoint(session_factory, drained, box, event_types=["desk.created"])
    paused = endpoint(session_factory, drained, box, event_types=["desk.created"], paused=True)
    desk_events(session_factory, drained, "A", "B", "C", "D")
    now = utcnow()
    a, b, c, d = relay(session_factory, now=now)
    assert len(delivery_rows(session_factory, paused)) == 4
    attempt(session_factory, a, FAIL, now=now)  # due at now + 5 s
    attempt(session_factory, b, OK, now=now)
    with transaction(session_factory) as session:
        session.execute(update(Delivery).where(Delivery.id == d).values(next_attempt_at=None))
        session.execute(update(Delivery).where(Delivery.id == c).values(next_attempt_at=now - timedelta(seconds=1)))
    with session_factory() as session:
        assert deliveries.due_deliveries(session, now=now) == [d, c]
        assert deliveries.due_deliveries(session, now=now + timedelta(seconds=5)) == [d, c, a]
        assert deliveries.due_deliveries(session, now=now + timedelta(seconds=5), limit=2) == [d, c]
    assert {delivery.endpoint_id for delivery in delivery_rows(session_factory, live)} == {live}


def test_a_lease_keeps_deliveries_from_the_sweep_until_it_ends(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    now = utcnow()
    until = now + timedelta(minutes=5)
    with transaction(session_factory) as session:
        a, b, c = outbox_relay.relay(session, now=now)
        deliveries.lease(session, [a, b, c], until=until)
        deliveries.lease(session, [], until=until)
    attempt(session_factory, c, OK, now=now)
    with transaction(session_factory) as session:
        deliveries.lease(session, [c], until=now + timedelta(days=1))  # finished: left alone
    with session_factory() as session:
        assert deliveries.due_deliveries(session, now=now) == []
        assert deliveries.due_deliveries(session, now=until) == [a, b]
    assert load(session_factory, Delivery, c).next_attempt_at is None
    # The attempt's outcome sets the next time anew.
    result = attempt(session_factory, a, FAIL, now=now)
    assert load(session_factory, Delivery, a).next_attempt_at == result.next_attempt_at == now + timedelta(seconds=5)


# --- the log -------------------------------------------------------------------------------------


def test_select_deliveries_and_attempts_of(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    globex = make_org(session_factory, "Globex")
    first = endpoint(session_factory, drained, box, event_types=["desk.created"])
    second = endpoint(session_factory, drained, box, event_types=["desk.created"])
    endpoint(session_factory, globex, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B")
    desk_events(session_factory, globex, "G")
    relay(session_factory)
    a1, b1 = (d.id for d in delivery_rows(session_factory, first))
    a2, b2 = (d.id for d in delivery_rows(session_factory, second))
    now = utcnow()
    attempt(session_factory, a1, FAIL, now=now)
    attempt(session_factory, a1, OK, now=now + timedelta(seconds=5))
    org_id = drained.organisation.id
    event_a = load(session_factory, Delivery, a1).event_id
    with session_factory() as session:

        def ids(**filters: Any) -> set[int]:
            return {d.id for d in session.scalars(deliveries.select_deliveries(org_id, **filters))}

        assert ids() == {a1, b1, a2, b2}
        assert ids(endpoint_id=first) == {a1, b1}
        assert ids(event_id=event_a) == {a1, a2}
        assert ids(status="succeeded") == {a1}
        assert ids(endpoint_id=second, status="pending") == {a2, b2}
        with pytest.raises(Invalid):
            ids(status="lost")
        log = deliveries.attempts_of(session, [a1, b1])
        assert deliveries.attempts_of(session, []) == {}
    assert [(a.status_code, a.succeeded) for a in log[a1]] == [(500, False), (200, True)]
    assert log[b1] == []


# --- replays -------------------------------------------------------------------------------------


def replay(factory: sessionmaker[Session], org: Org, endpoint_id: int, event_id: str, now: datetime) -> int:
    with transaction(factory) as session:
        found = webhook_endpoints.get_endpoint(session, org.organisation.id, endpoint_id)
        return delivery_replays.replay_event(session, found, event_id, now=now)


def test_replay_an_exhausted_delivery_starts_a_new_round(
    session_factory: sessionmaker[Session], drained: Org, one: tuple[int, int]
) -> None:
    endpoint_id, delivery_id = one
    now = utcnow()
    attempt(session_factory, delivery_id, FAIL, now=now, delays=(0,))
    event_id = load(session_factory, Delivery, delivery_id).event_id
    later = now + timedelta(hours=1)
    assert replay(session_factory, drained, endpoint_id, event_id, later) == delivery_id
    delivery = load(session_factory, Delivery, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.PENDING, 0, later)
    assert len(attempts_logged(session_factory, delivery_id)) == 1
    assert attempt(session_factory, delivery_id, OK, now=later).state == "succeeded"
    assert len(attempts_logged(session_factory, delivery_id)) == 2
    assert replay(session_factory, drained, endpoint_id, event_id, later) == delivery_id
    delivery = load(session_factory, Delivery, delivery_id)
    assert (delivery.status, delivery.delivered_at) == (DeliveryStatus.PENDING, None)


def test_replay_a_pending_delivery_makes_it_due_now(
    session_factory: sessionmaker[Session], drained: Org, one: tuple[int, int]
) -> None:
    endpoint_id, delivery_id = one
    now = utcnow()
    attempt(session_factory, delivery_id, FAIL, now=now)
    event_id = load(session_factory, Delivery, delivery_id).event_id
    assert replay(session_factory, drained, endpoint_id, event_id, now) == delivery_id
    delivery = load(session_factory, Delivery, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.PENDING, 1, now)


def test_replay_an_event_older_than_the_endpoint(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    desk_events(session_factory, drained, "Old")
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    relay(session_factory)
    assert delivery_rows(session_factory, endpoint_id) == []
    with session_factory() as session:
        event_id = session.scalars(select(OutboxEvent.id).where(OutboxEvent.type == "desk.created")).one()
    now = utcnow()
    delivery_id = replay(session_factory, drained, endpoint_id, event_id, now)
    [made] = delivery_rows(session_factory, endpoint_id)
    assert (made.id, made.event_id, made.status, made.next_attempt_at) == (
        delivery_id,
        event_id,
        DeliveryStatus.PENDING,
        now,
    )
    assert replay(session_factory, drained, endpoint_id, event_id, now) == delivery_id


def test_replay_refusals(session_factory: sessionmaker[Session], drained: Org, box: SecretBox) -> None:
    globex = make_org(session_factory, "Globex")
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, globex, "Theirs")
    with session_factory() as session:
        theirs = session.scalars(select(OutboxEvent.id).where(OutboxEvent.type == "desk.created")).one()
        created = session.scalars(select(OutboxEvent.id).where(OutboxEvent.type == "endpoint.created")).one()
    now = utcnow()
    for event_id, error in ((theirs, NotFound), ("evt_missing", NotFound), (created, NotAllowed)):
        with refused(session_factory, error) as tried:
            found = webhook_endpoints.get_endpoint(tried.session, drained.organisation.id, endpoint_id)
            delivery_replays.replay_event(tried.session, found, event_id, now=now)
    with transaction(session_factory) as session:
        session.execute(update(WebhookEndpoint).values(disabled_at=now, disabled_reason="gone"))
    desk_events(session_factory, drained, "Ours")
    with session_factory() as session:
        ours = session.scalars(
            select(OutboxEvent.id)
            .where(OutboxEvent.organisation_id == drained.organisation.id)
            .order_by(OutboxEvent.seq.desc())
        ).first()
    assert ours is not None
    with refused(session_factory, NotAllowed) as tried:
        found = webhook_endpoints.get_endpoint(tried.session, drained.organisation.id, endpoint_id)
        delivery_replays.replay_event(tried.session, found, ours, now=now)
    with refused(session_factory, NotAllowed) as tried:
        found = webhook_endpoints.get_endpoint(tried.session, drained.organisation.id, endpoint_id)
        delivery_replays.replay_failed(tried.session, found, since=now, now=now)


def test_replay_failed_since_a_time_in_event_order(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    early = utcnow() - timedelta(days=2)
    desk_events(session_factory, drained, "Old")
    [old] = relay(session_factory, now=early)
    desk_events(session_factory, drained, "A", "B", "C", "D")
    now = utcnow()
    a, b, c, d = relay(session_factory, now=now)
    for delivery_id in (old, d, b, a):
        attempt(session_factory, delivery_id, FAIL, now=now, delays=(0,))
    attempt(session_factory, c, OK, now=now)
    later = now + timedelta(minutes=1)
    with transaction(session_factory) as session:
        found = webhook_endpoints.get_endpoint(session, drained.organisation.id, endpoint_id)
        assert delivery_replays.replay_failed(session, found, since=now - timedelta(hours=1), now=later) == [a, b, d]
    states = {x.id: (x.status, x.attempts, x.next_attempt_at) for x in delivery_rows(session_factory, endpoint_id)}
    assert states[a] == states[b] == states[d] == (DeliveryStatus.PENDING, 0, later)
    assert states[old][0] is DeliveryStatus.EXHAUSTED
    assert states[c][0] is DeliveryStatus.SUCCEEDED
    with transaction(session_factory) as session:
        found = webhook_endpoints.get_endpoint(session, drained.organisation.id, endpoint_id)
        assert delivery_replays.replay_failed(session, found, since=now - timedelta(hours=1), now=later) == []


# --- enabling, deleting --------------------------------------------------------------------------


def test_enable_brings_back_the_pending_deliveries(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox, outbox: Outbox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    a, b, c = relay(session_factory)
    now = utcnow()
    attempt(session_factory, b, AttemptOutcome(410, 1, gone=True), now=now)
    outbox.skip()
    with transaction(session_factory) as session:
        found = webhook_endpoints.get_endpoint(session, drained.organisation.id, endpoint_id)
        assert webhook_endpoints.enable_endpoint(session, found, now=now) == [a, c]
        assert webhook_endpoints.enable_endpoint(session, found, now=now) == []
    stored = load(session_factory, WebhookEndpoint, endpoint_id)
    assert (stored.disabled_at, stored.disabled_reason, stored.failing_since) == (None, None, None)
    assert outbox.only("endpoint.enabled")["endpoint_id"] == endpoint_id


def test_enabling_a_paused_endpoint_keeps_its_deliveries_waiting(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B")
    a, b = relay(session_factory)
    attempt(session_factory, a, AttemptOutcome(410, 1, gone=True), now=utcnow())
    update_endpoint(session_factory, drained, endpoint_id, paused=True)
    with transaction(session_factory) as session:
        found = webhook_endpoints.get_endpoint(session, drained.organisation.id, endpoint_id)
        assert webhook_endpoints.enable_endpoint(session, found) == []
    assert update_endpoint(session_factory, drained, endpoint_id, paused=False) == [b]


def test_resuming_a_disabled_endpoint_sends_nothing(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"], paused=True)
    desk_events(session_factory, drained, "A")
    relay(session_factory)
    with transaction(session_factory) as session:
        session.execute(update(WebhookEndpoint).values(disabled_at=utcnow(), disabled_reason="gone"))
    assert update_endpoint(session_factory, drained, endpoint_id, paused=False) == []


def test_deleting_an_endpoint_deletes_its_log(
    session_factory: sessionmaker[Session], one: tuple[int, int], drained: Org
) -> None:
    endpoint_id, delivery_id = one
    attempt(session_factory, delivery_id, FAIL, now=utcnow())
    with transaction(session_factory) as session:
        webhook_endpoints.delete_endpoint(
            session, webhook_endpoints.get_endpoint(session, drained.organisation.id, endpoint_id)
        )
    with session_factory() as session:
        assert session.scalars(select(Delivery)).all() == []
        assert session.scalars(select(DeliveryAttempt)).all() == []
        assert delivery_attempts.attempt_context(session, delivery_id) is None


# --- schema --------------------------------------------------------------------------------------


def test_unrelayed_events_have_a_partial_index(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            definition = connection.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_outbox_events_unrelayed'")
            )
        else:
            definition = connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'ix_outbox_events_unrelayed'")
            )
    assert definition is not None
    assert "WHERE" in definition
    assert "relayed_at IS NULL" in definition
    assert "ix_outbox_events_unrelayed" in {index["name"] for index in inspect(engine).get_indexes("outbox_events")}


@pytest.fixture(params=["sqlite", "postgres"])
def at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database migrated to 0001 only."""
    if request.param == "sqlite":
        lite = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        upgrade(lite, "0001")
        yield lite
        lite.dispose()
        return
    with postgres_database(f"deskbridge_webhooks_migration_{os.getpid()}") as pg:
        upgrade(pg, "0001")
        yield pg


def test_events_before_0002_count_as_relayed(at_0001: Engine) -> None:
    written = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with at_0001.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (name, slug, timezone, api_enabled, last_event_seq, created_at, updated_at)"
                " VALUES ('Old', 'old', 'UTC', false, 1, :at, :at)"
            ),
            {"at": written},
        )
        connection.execute(
            text(
                "INSERT INTO outbox_events (id, organisation_id, seq, type, data, created_at)"
                " VALUES ('evt_old', 1, 1, 'desk.created', '{}', :at)"
            ),
            {"at": written},
        )
    upgrade(at_0001)
    factory = make_session_factory(at_0001)
    with factory() as session:
        assert session.get_one(OutboxEvent, "evt_old").relayed_at == written
        assert outbox_relay.relay(session, now=utcnow()) == []


# --- delivery jobs: relaying with a lease, reading and recording several at once -----------------


def test_relay_due_leases_what_it_returns_and_names_the_endpoints(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    live = endpoint(session_factory, drained, box, event_types=["desk.created"])
    paused = endpoint(session_factory, drained, box, event_types=["desk.created"], paused=True)
    desk_events(session_factory, drained, "A", "B")
    now = utcnow()
    until = now + timedelta(minutes=5)
    with transaction(session_factory) as session:
        relayed = outbox_relay.relay_due(session, now=now, lease_until=until)
    assert relayed.events == 4  # the endpoints' endpoint.created and the desks' desk.created
    made = delivery_rows(session_factory, live)
    assert relayed.due == [(live, delivery.id) for delivery in made]  # in event order; the paused one waits
    assert {delivery.next_attempt_at for delivery in made} == {until}
    assert {delivery.next_attempt_at for delivery in delivery_rows(session_factory, paused)} == {now}
    with session_factory() as session:
        assert deliveries.due_deliveries(session, now=now) == []  # leased: the sweep leaves them alone
        assert deliveries.due_deliveries_of_endpoints(session, now=until) == relayed.due
    with transaction(session_factory) as session:
        assert outbox_relay.relay_due(session, now=now) == outbox_relay.Relayed(0, [])


def test_attempt_contexts_reads_the_pending_ones_in_the_order_given(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    a, b, c = relay(session_factory)
    attempt(session_factory, b, OK, now=utcnow())
    with session_factory() as session:
        jobs = delivery_attempts.attempt_contexts(session, [c, b, a, c, 9999])
        assert [job.delivery_id for job in jobs] == [c, a]  # finished, unknown and repeated ones left out
        assert jobs[1] == delivery_attempts.attempt_context(session, a)
        assert delivery_attempts.attempt_contexts(session, []) == []


def test_record_successes_finishes_them_in_one_go(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint_id = endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B", "C")
    a, b, c = relay(session_factory)
    start = utcnow()
    attempt(session_factory, a, FAIL, now=start)  # a failing streak starts
    assert load(session_factory, WebhookEndpoint, endpoint_id).failing_since == start
    now = start + timedelta(seconds=10)
    accepted = AttemptOutcome(status_code=202, duration_ms=-3, response_excerpt="x" * 5000)
    with transaction(session_factory) as session:
        recorded = delivery_attempts.record_successes(session, [(a, OK), (b, accepted)], now=now)
    assert sorted(recorded) == sorted([a, b])
    for delivery_id, status_code, attempts in ((a, 200, 2), (b, 202, 1)):
        delivery = load(session_factory, Delivery, delivery_id)
        assert (delivery.status, delivery.attempts, delivery.delivered_at, delivery.next_attempt_at) == (
            DeliveryStatus.SUCCEEDED,
            attempts,
            now,
            None,
        )
        assert (delivery.last_attempt_at, delivery.last_status_code) == (now, status_code)
        logged = attempts_logged(session_factory, delivery_id)[-1]
        assert (logged.attempted_at, logged.status_code, logged.succeeded, logged.error) == (
            now,
            status_code,
            True,
            None,
        )
    [logged_b] = attempts_logged(session_factory, b)
    assert (logged_b.duration_ms, len(logged_b.response_excerpt)) == (0, 1024)
    assert load(session_factory, WebhookEndpoint, endpoint_id).failing_since is None
    assert load(session_factory, Delivery, c).status is DeliveryStatus.PENDING


def test_record_successes_as_one_statement_outside_a_transaction(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    """`one_statement`, as the workers record successes: autocommit on PostgreSQL, and the pooled
    connection is back to transactions afterwards (a block that raises leaves nothing)."""
    endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B")
    a, b = relay(session_factory)
    with one_statement(session_factory) as session:
        assert sorted(delivery_attempts.record_successes(session, [(a, OK), (b, OK)], now=utcnow())) == [a, b]
    assert [load(session_factory, Delivery, made).status for made in (a, b)] == [DeliveryStatus.SUCCEEDED] * 2

    def change_then_fail() -> None:
        with transaction(session_factory) as session:
            session.execute(update(Delivery).where(Delivery.id == a).values(attempts=99))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert load(session_factory, Delivery, a).attempts == 1


def test_record_successes_leaves_finished_and_deleted_deliveries_alone(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A", "B")
    a, b = relay(session_factory)
    attempt(session_factory, a, OK, now=utcnow())
    with transaction(session_factory) as session:
        assert delivery_attempts.record_successes(session, [(a, OK), (b, OK), (9999, OK)], now=utcnow()) == [b]
        assert delivery_attempts.record_successes(session, [], now=utcnow()) == []
    assert len(attempts_logged(session_factory, a)) == 1  # a duplicate job logs nothing more
    with session_factory() as session:
        assert session.scalar(select(Delivery.attempts).where(Delivery.id == a)) == 1


def test_record_successes_refuses_a_failure(
    session_factory: sessionmaker[Session], drained: Org, box: SecretBox
) -> None:
    endpoint(session_factory, drained, box, event_types=["desk.created"])
    desk_events(session_factory, drained, "A")
    [a] = relay(session_factory)
    with transaction(session_factory) as session, pytest.raises(ValueError, match="2xx outcomes only"):
        delivery_attempts.record_successes(session, [(a, FAIL)], now=utcnow())
    assert load(session_factory, Delivery, a).status is DeliveryStatus.PENDING
