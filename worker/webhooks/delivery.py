"""Webhook delivery jobs, from the store to the receivers and back, and the relay that feeds them.

A job carries the ids of up to MAX_BATCH deliveries of one endpoint, in event order: the relay makes
one per endpoint for the events it takes (the relay job posts a small pass's itself instead, through
worker.webhooks.inline, with the functions here), the sweep one per endpoint for what is due, a resume or a
replay one for the backlog, a short retry one for its delivery. The job reads them with their events
in one query, takes up to LANES of the endpoint's slots (one a request in flight), posts them through
the process's `Poster` that many at a time (a backlog job, which promises event order, one after the
other), and records the successes together (`delivery_attempts.record_successes`); a failure is recorded on its
own (`delivery_attempts.record_attempt`: retry schedule, Retry-After, 410). No request starts after a 410, nor
after BATCH_BUDGET seconds (but the first): the rest is handed on to a job of its own, so a slow
endpoint holds a worker thread no longer than a single delivery would.

Attempts are enqueued right away for the first try and for short retries; a long retry (minutes to
hours) is only written as `next_attempt_at` and picked up by the scheduler's sweep, so no message
waits for hours in a broker. Whoever enqueues a delivery leases it (`deliveries.lease`) so that the
sweep does not enqueue it a second time while it waits in the queue; when the broker refuses the
job (Redis down), the lease is given back (`release`) so that the sweep sends it once it is due.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import httpx

from infra.redis_client import note_unsent
from store.columns import utcnow
from store.db import one_statement, transaction
from store.errors import NotFound
from store.models import SignatureScheme
from store.secret_box import SecretBox, UndecryptableSecret
from store.services import deliveries, delivery_attempts, outbox_relay
from store.services.delivery_attempts import AttemptOutcome, AttemptResult, DeliveryJob
from worker import metrics
from worker.runtime import Runtime
from worker.webhooks.disabled_mail import tell_admins
from worker.webhooks.limits import endpoint_slots, take_tokens
from worker.webhooks.sender import (
    TIMEOUT_SECONDS,
    Outcome,
    Prepare,
    SignedPost,
    WebhookClient,
    build_body,
    event_payload,
    sign_headers_with,
)
from worker.webhooks.signing import Signer, signer_for

logger = logging.getLogger(__name__)

# Retries due within this long are enqueued with a delay; later ones wait for the sweep.
SHORT_RETRY = timedelta(seconds=60)
# An enqueued delivery is not enqueued again by the sweep for this long.
LEASE = timedelta(minutes=5)
# A job whose endpoint has no free slot tries again after about this long.
BUSY_RETRY_MS = 500
# Deliveries a job reads and posts at most; the relay and the sweep cut their jobs to this size.
MAX_BATCH = 200
# Seconds a job keeps posting before it hands its remaining deliveries on to a new job.
BATCH_BUDGET = 2.0
# Requests a job posts at once at most (as many of its endpoint's slots as are free, up to this).
LANES = 4
# A relay pass that made at most this many deliveries due posts them itself (worker.webhooks.inline):
# at a trickle of commits a job per endpoint and pass costs more than the requests. Larger passes (a
# burst) go by job, spread over every worker.
INLINE_MAX = 32
# Endpoint secrets kept decrypted (as signers) in each process, by their encrypted form.
SIGNERS_CACHED = 1024

Enqueue = Callable[[list[int], int], None]  # (delivery ids of one endpoint in order, delay in ms)


def attempt_batch(
    runtime: Runtime,
    delivery_ids: Sequence[int],
    enqueue: Enqueue,
    *,
    budget: float = BATCH_BUDGET,
    in_order: bool = False,
) -> dict[int, AttemptResult]:
    """Attempt deliveries of one endpoint, in the order given, up to LANES at once (`in_order`: one
    after the other, each sent once the one before was answered).

    Finished deliveries are skipped, and all of them while the endpoint is paused or disabled. A
    failed one goes on its retry schedule and the next ones do not wait for it; a 410 stops the job
    (the endpoint is disabled, or the REST hook deleted with its deliveries): the requests already
    in flight are recorded, no other starts. What the job does not get to (no free slot, its time
    `budget` in seconds used, more than MAX_BATCH) is enqueued again, in order. Ids of other
    endpoints than the first one's (none of our callers mixes them) go to jobs of their own.

    Returns where each attempted delivery stands, in the order given.
    """
    ids = list(dict.fromkeys(delivery_ids))
    head, later = ids[:MAX_BATCH], ids[MAX_BATCH:]
    with transaction(runtime.session_factory) as session:
        jobs = delivery_attempts.attempt_contexts(session, head)
    groups = by_endpoint(jobs)
    for other in groups[1:]:
        requeue(runtime, [job.delivery_id for job in other], 0, enqueue, due=utcnow())
    group = groups[0] if groups else []
    if not group or group[0].paused or group[0].disabled:
        if later:
            requeue(runtime, later, 0, enqueue, due=utcnow())
        return {}
    if group[0].ordered:
        return _attempt_ordered(runtime, group[0], [job.delivery_id for job in group] + later, enqueue, budget)
    held_back, wait_ms = [], 0
    rate = group[0].rate_limit_per_second
    if rate:
        granted, wait_ms = take_tokens(group[0].endpoint_id, rate, len(group))
        if not granted:
            requeue(runtime, [job.delivery_id for job in group] + later, wait_ms, enqueue, due=utcnow())
            return {}
        group, held_back = group[:granted], [job.delivery_id for job in group[granted:]]
    sent = _send_in_slots(runtime, group, enqueue, budget, 1 if in_order else LANES)
    if sent is None:
        waiting = [job.delivery_id for job in group] + held_back + later
        requeue(runtime, waiting, BUSY_RETRY_MS + random.randrange(BUSY_RETRY_MS), enqueue, due=utcnow())
        return {}
    failures, successes, rest = sent
    results = {**failures, **record_successes(runtime, successes)}
    if rest or held_back or later:
        # Leased anew: a long backlog handed on from job to job outlasts the lease it started with.
        lease(runtime, rest + held_back + later)
        requeue(runtime, rest + held_back + later, wait_ms if held_back else 0, enqueue, due=utcnow())
    return {job.delivery_id: results[job.delivery_id] for job in group if job.delivery_id in results}


def _attempt_ordered(
    runtime: Runtime, first: DeliveryJob, asked: list[int], enqueue: Enqueue, budget: float
) -> dict[int, AttemptResult]:
    """An ordered endpoint's deliveries, strictly in event order, one request at a time across every
    worker (its single slot): whatever ids the job was given, it sends the endpoint's first pending
    delivery and those after it while each succeeds (or is given up on). A failure whose retry is
    scheduled stops it: the rest wait for that retry. The rate limit and the time budget hand the
    rest on to a new job."""
    endpoint_id, rate = first.endpoint_id, first.rate_limit_per_second
    results: dict[int, AttemptResult] = {}
    with endpoint_slots(endpoint_id, 1, limit=1) as taken:
        if not taken:
            requeue(runtime, asked, BUSY_RETRY_MS + random.randrange(BUSY_RETRY_MS), enqueue, due=utcnow())
            return results
        started = time.monotonic()
        while True:
            with transaction(runtime.session_factory) as session:
                head = delivery_attempts.ordered_head(session, endpoint_id, now=utcnow(), limit=MAX_BATCH)
            if not head:
                return results
            for index, job in enumerate(head):
                remaining = [later.delivery_id for later in head[index:]]
                granted, wait_ms = 1, 0
                if rate:
                    granted, wait_ms = take_tokens(endpoint_id, rate, 1)
                if (rate and not granted) or (results and time.monotonic() - started > budget):
                    lease(runtime, remaining)
                    requeue(runtime, remaining, wait_ms, enqueue, due=utcnow())
                    return results
                failures, successes, _ = _send_group(runtime, [job], enqueue, budget, 1)
                results.update(failures)
                results.update(record_successes(runtime, successes))
                result = results.get(job.delivery_id)
                if result is None or result.state == "retry" or result.endpoint_disabled or result.endpoint_deleted:
                    return results


def by_endpoint(jobs: Sequence[DeliveryJob]) -> list[list[DeliveryJob]]:
    """The jobs grouped by endpoint, in the order of each endpoint's first job, each group in order."""
    groups: dict[int, list[DeliveryJob]] = {}
    for job in jobs:
        groups.setdefault(job.endpoint_id, []).append(job)
    return list(groups.values())


Sent = tuple[dict[int, AttemptResult], list[tuple[DeliveryJob, AttemptOutcome]], list[int]]


def _send_in_slots(
    runtime: Runtime, group: Sequence[DeliveryJob], enqueue: Enqueue, budget: float, lanes: int
) -> Sent | None:
    """Post the group in up to `lanes` of its endpoint's slots; None when none is free (nothing was sent).

    Returns the results recorded (failures, and the successes before them), the successes still to
    record, and the ids not attempted. Once a request went out, its outcome must be recorded: slots
    that cannot be given back (the slots' Redis gone meanwhile) are logged and left to expire on their
    own (limits.SLOT_TTL_MS).
    """
    endpoint_id = group[0].endpoint_id
    sent: Sent | None = None
    try:
        with endpoint_slots(endpoint_id, min(lanes, len(group))) as taken:
            if taken:
                sent = _send_group(runtime, group, enqueue, budget, taken)
    except Exception:
        if sent is None:
            raise
        note_unsent(logger, "could not give back the slots of endpoint %s; they expire", endpoint_id)
    return sent


def _send_group(runtime: Runtime, group: Sequence[DeliveryJob], enqueue: Enqueue, budget: float, lanes: int) -> Sent:
    client = runtime.webhook_client
    if not isinstance(client, WebhookClient):
        raise TypeError("the runtime's webhook_client must be made by worker.webhooks.sender.make_client")
    now = utcnow()
    try:
        requests = [prepare(job, signers(job, runtime.secret_box, now)) for job in group]
    except UndecryptableSecret:
        return _unsigned(runtime, group, enqueue), [], []
    outcomes = client.poster.post_all(requests, lanes=lanes, budget=budget, timeout=request_timeout(client))
    results: dict[int, AttemptResult] = {}
    successes: list[tuple[DeliveryJob, AttemptOutcome]] = []
    for job, sent in zip(group, outcomes, strict=False):
        outcome = attempt_outcome(sent)
        if outcome.succeeded:
            successes.append((job, outcome))
            continue
        # The successes before it first, so that the endpoint's failing streak starts with this failure.
        results.update(record_successes(runtime, successes))
        successes = []
        result = record_failure(runtime, job, outcome, enqueue)
        if result is not None:
            results[job.delivery_id] = result
    if any(sent.gone for sent in outcomes):
        # The endpoint is disabled or deleted: the rest stays pending for when it is enabled again,
        # or went with it.
        return results, successes, []
    return results, successes, [job.delivery_id for job in group[len(outcomes) :]]


# Why a delivery whose endpoint's secret no key opens was not sent (its attempt's error).
UNDECRYPTABLE = UndecryptableSecret.reason("the webhook's signing secret") + " Not sent; it is tried again."


def _unsigned(runtime: Runtime, group: Sequence[DeliveryJob], enqueue: Enqueue) -> dict[int, AttemptResult]:
    """The endpoint's signing secret cannot be decrypted: nothing is sent, and each delivery gets a failed
    attempt saying why (on its retry schedule, so it goes out once the right key is back)."""
    logger.error("endpoint %s: %s", group[0].endpoint_id, UNDECRYPTABLE)
    metrics.UNDECRYPTABLE.labels("webhook_secret").inc()
    outcome = AttemptOutcome(status_code=None, duration_ms=0, error=UNDECRYPTABLE)
    results: dict[int, AttemptResult] = {}
    for job in group:
        result = record_failure(runtime, job, outcome, enqueue)
        if result is not None:
            results[job.delivery_id] = result
    return results


def record_successes(
    runtime: Runtime, successes: Sequence[tuple[DeliveryJob, AttemptOutcome]]
) -> dict[int, AttemptResult]:
    """Record 2xx attempts (of one endpoint or several) in one transaction; where each delivery stands
    (those finished meanwhile are left out)."""
    if not successes:
        return {}
    now = utcnow()
    # One statement on PostgreSQL (a few on SQLite, in a transaction there).
    with one_statement(runtime.session_factory) as session:
        recorded = set(
            delivery_attempts.record_successes(
                session, [(job.delivery_id, outcome) for job, outcome in successes], now=now
            )
        )
    results: dict[int, AttemptResult] = {}
    for job, outcome in successes:
        if job.delivery_id in recorded:
            results[job.delivery_id] = AttemptResult("succeeded", job.attempts + 1)
            metrics.DELIVERIES.labels("succeeded").inc()
            metrics.DELIVERY_DURATION.observe(outcome.duration_ms / 1000)
            metrics.DELIVERY_LATENCY.observe((now - job.event_created_at).total_seconds())
    return results


def record_failure(
    runtime: Runtime, job: DeliveryJob, outcome: AttemptOutcome, enqueue: Enqueue
) -> AttemptResult | None:
    """Record a failed attempt and enqueue its retry if it is due soon; None when the delivery is gone."""
    now = utcnow()
    wait: timedelta | None = None
    try:
        with transaction(runtime.session_factory) as session:
            result = delivery_attempts.record_attempt(
                session, job.delivery_id, outcome, now=now, delays=runtime.retry_delays
            )
            if result.state == "retry" and result.next_attempt_at is not None:
                wait = result.next_attempt_at - now
                if wait <= SHORT_RETRY:
                    deliveries.lease(session, [job.delivery_id], until=result.next_attempt_at + LEASE)
    except NotFound:
        # Deleted during the request with its endpoint (a REST hook whose target answered 410 to
        # another attempt, or an admin): there is nothing left to record or to retry.
        logger.info("delivery %s went with its endpoint %s during the attempt", job.delivery_id, job.endpoint_id)
        return None
    _observe_failure(job, result, outcome)
    if result.endpoint_disabled:
        tell_admins(runtime, job.endpoint_id)
    if result.next_attempt_at is not None and wait is not None and wait <= SHORT_RETRY:
        delay_ms = max(0, int(wait.total_seconds() * 1000))
        requeue(runtime, [job.delivery_id], delay_ms, enqueue, due=result.next_attempt_at)
    return result


def requeue(runtime: Runtime, delivery_ids: list[int], delay_ms: int, enqueue: Enqueue, *, due: datetime) -> None:
    """Enqueue the deliveries' next attempt; if the broker fails, leave them to the sweep from `due` on.

    The attempts before are recorded whatever happens here, so this does not raise: a delivery still
    leased would wait for the lease (minutes) instead of the sweep picking it up once it is due.
    """
    try:
        enqueue(delivery_ids, delay_ms)
    except Exception:
        note_unsent(logger, "could not enqueue %d deliveries; the sweep will pick them up", len(delivery_ids))
        release(runtime, delivery_ids, due)


def prepare(job: DeliveryJob, job_signers: Sequence[Signer]) -> Prepare:
    """The job's request, built and signed when the poster is about to send it (its webhook-timestamp
    is the time it went out)."""

    def signed() -> SignedPost:
        now = utcnow()
        body = build_body(
            [event_payload(job.event_id, job.event_type, job.event_created_at, job.event_data)], job.payload_format
        )
        return SignedPost(job.url, body, sign_headers_with(job.event_id, body, job_signers, now))

    return signed


def attempt_outcome(sent: Outcome) -> AttemptOutcome:
    """What the poster's `Outcome` is to the store."""
    return AttemptOutcome(
        status_code=sent.status_code,
        duration_ms=sent.duration_ms,
        response_excerpt=sent.response_excerpt,
        error=sent.error,
        retry_after=sent.retry_after,
        gone=sent.gone,
    )


def signers(job: DeliveryJob, box: SecretBox, now: datetime) -> list[Signer]:
    """Signers for the secrets to sign with at `now` (as `webhook_secrets.signing_secrets`), decrypted once
    a process."""
    if job.signature is SignatureScheme.ED25519 and job.private_key_encrypted is not None:
        return [_signer(box, job.private_key_encrypted)]
    current = [_signer(box, job.secret_encrypted)]
    previous, expires_at = job.previous_secret_encrypted, job.previous_secret_expires_at
    if previous is not None and expires_at is not None and expires_at > now:
        return [*current, _signer(box, previous)]
    return current


@functools.lru_cache(maxsize=SIGNERS_CACHED)
def _signer(box: SecretBox, secret_encrypted: str) -> Signer:
    # By the encrypted secret: a rotation (or a re-encryption) makes a new one, so nothing goes stale.
    return signer_for(box.decrypt(secret_encrypted))


def request_timeout(client: httpx.Client) -> float:
    """Seconds one request may take: the webhook client's read timeout (make_client sets TIMEOUT_SECONDS)."""
    read = client.timeout.read
    return TIMEOUT_SECONDS if read is None else read


def _observe_failure(job: DeliveryJob, result: AttemptResult, outcome: AttemptOutcome) -> None:
    metrics.DELIVERIES.labels(result.state).inc()
    metrics.DELIVERY_DURATION.observe(outcome.duration_ms / 1000)
    if result.endpoint_disabled or result.endpoint_deleted:
        logger.warning(
            "endpoint %s %s after delivery %s",
            job.endpoint_id,
            "disabled" if result.endpoint_disabled else "deleted",
            job.delivery_id,
        )


# Posts some of a relay pass's deliveries itself and returns the ids it leaves to jobs (worker.webhooks.inline).
PostInline = Callable[[Sequence[DeliveryJob]], list[int]]


def relay(runtime: Runtime, enqueue: Enqueue, *, limit: int = 500, post: PostInline | None = None) -> int:
    """Turn waiting outbox events into deliveries and enqueue those due; returns how many were due.

    `post` (the relay job's): a pass that made at most INLINE_MAX deliveries due hands them to it
    (`worker.webhooks.inline`, which posts them itself rather than through a job per endpoint);
    those it leaves are enqueued.
    """
    total = 0
    while True:
        now = utcnow()
        with transaction(runtime.session_factory) as session:
            relayed = outbox_relay.relay_due(
                session, limit=limit, now=now, lease_until=now + LEASE, jobs_up_to=INLINE_MAX if post else 0
            )
            # Fewer events than the limit: none was left when this relay looked (and a commit after
            # that schedules a relay of its own). Events another relay holds are its own.
            more = relayed.events >= limit and outbox_relay.has_unrelayed(session)
        due = relayed.due
        if post is not None and 0 < len(due) <= INLINE_MAX:
            left = set(post(relayed.jobs))
            due = [(endpoint_id, delivery_id) for endpoint_id, delivery_id in due if delivery_id in left]
        _enqueue_all(runtime, due, enqueue, now)
        total += len(relayed.due)
        if not more:
            return total


def sweep(runtime: Runtime, enqueue: Enqueue, *, limit: int = 1000) -> int:
    """Enqueue the deliveries whose time has come and that nobody holds (long retries, lost jobs)."""
    now = utcnow()
    with transaction(runtime.session_factory) as session:
        due = deliveries.due_deliveries_of_endpoints(session, now=now, limit=limit)
        deliveries.lease(session, [delivery_id for _, delivery_id in due], until=now + LEASE)
    _enqueue_all(runtime, due, enqueue, now)
    return len(due)


def lease(runtime: Runtime, delivery_ids: Sequence[int]) -> None:
    """Hold deliveries about to be enqueued (after a resume or a replay) away from the sweep."""
    with transaction(runtime.session_factory) as session:
        deliveries.lease(session, delivery_ids, until=utcnow() + LEASE)


def release(runtime: Runtime, delivery_ids: Sequence[int], due: datetime) -> None:
    """Give leased deliveries whose job never reached the broker back to the sweep, due at `due`.

    Best effort (the broker and the store may be down together): the lease runs out on its own.
    """
    try:
        with transaction(runtime.session_factory) as session:
            deliveries.lease(session, delivery_ids, until=due)
    except Exception:
        logger.exception(
            "could not release %d deliveries; the sweep gets them when their lease ends", len(delivery_ids)
        )


def batches(due: Iterable[tuple[int, int]]) -> list[list[int]]:
    """(endpoint id, delivery id) pairs as jobs: one list of ids per endpoint in the order given, cut at MAX_BATCH."""
    by_endpoint: dict[int, list[int]] = {}
    for endpoint_id, delivery_id in due:
        by_endpoint.setdefault(endpoint_id, []).append(delivery_id)
    return [ids[start : start + MAX_BATCH] for ids in by_endpoint.values() for start in range(0, len(ids), MAX_BATCH)]


def _enqueue_all(runtime: Runtime, due: Sequence[tuple[int, int]], enqueue: Enqueue, at: datetime) -> None:
    """Enqueue the deliveries now, a job per endpoint; if the broker fails, release the ones not enqueued
    (due at `at`) and raise."""
    jobs = batches(due)
    for index, delivery_ids in enumerate(jobs):
        try:
            enqueue(delivery_ids, 0)
        except Exception:
            release(runtime, [delivery_id for job in jobs[index:] for delivery_id in job], at)
            raise
