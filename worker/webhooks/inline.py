"""What the relay job posts itself: a small pass's new deliveries, without a job per endpoint.

At a trickle of commits a relay pass makes a few deliveries, and a delivery job for each endpoint
(enqueued, fetched, acknowledged, its deliveries read again, its successes recorded on their own)
costs several times what posting them does. So a pass that made at most `delivery.INLINE_MAX`
deliveries due posts them from the relay's thread, as their jobs would: in the endpoint's slots (up
to LANES at once), signed as they go out, nothing more after a 410, the successes of every endpoint
recorded in one transaction, each failure on its retry schedule (`delivery.record_failure`). What
it does not post goes by job as before: an ordered endpoint's (its jobs keep the order), a
rate-limited one's (its jobs take from the bucket), one without a free slot, one whose secret no key
opens (the job records why), and a larger pass's.

The relay does not wait for the answers: a finisher thread (`_finishers`) gathers a pass's for up to
GATHER seconds and records those in together; an endpoint still answering then is finished on its
own. So a slow receiver holds up neither the next pass nor other endpoints.

Crashes: the deliveries are leased as for a job (the sweep takes them when the lease ends), and on
Redis what a relay job has under way is written down first (`InFlight`: a set under its message's
id). A relay job of a worker that was killed is put back on the queue by Dramatiq, as any job is;
the job, starting again, enqueues what its set holds (`InFlight.recover`), and their jobs skip what
was recorded meanwhile. A relay job ends only once what it posted is recorded (`InFlight.settle`),
so its message is acknowledged no sooner.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis
from dramatiq.brokers.redis import RedisBroker

from infra.redis_client import note_unsent
from store.columns import utcnow
from store.secret_box import UndecryptableSecret
from store.services.delivery_attempts import AttemptOutcome, DeliveryJob
from worker.runtime import Runtime
from worker.webhooks import delivery
from worker.webhooks.delivery import Enqueue
from worker.webhooks.limits import acquire_slots_of, release_slots_of
from worker.webhooks.sender import Outcome, Posting, Prepare, WebhookClient

logger = logging.getLogger(__name__)

# Seconds a finisher waits for a pass's answers to record them together; an endpoint slower than this
# is recorded on its own once it answers.
GATHER = 0.05
KEY_PREFIX = "deskbridge:relay-in-flight:"
# A relay job's set outlives the wait for Dramatiq to put a dead worker's job back (its heartbeat
# timeout and upkeep); after that the lease's sweep is the net.
IN_FLIGHT_TTL_MS = 600_000

# Threads that wait for the answers to what relay passes posted and record them, shared by the
# process's relay jobs: a pass's, and a slow endpoint's each (waiting costs a thread nothing else).
_finishers = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="webhook-finisher")


class InFlight:
    """What one relay job posted itself and has not recorded yet: in Redis under its message's id
    (`client` None: in-process, where no other process could take it up), and the finishers it waits for.
    """

    def __init__(self, client: redis.Redis | None, message_id: str) -> None:
        self.client = client
        self.key = f"{KEY_PREFIX}{message_id}"
        self._finishing: list[concurrent.futures.Future[None]] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, broker: object, message_id: str) -> InFlight:
        """The relay job's record on `broker` (Redis, or nothing to write in-process)."""
        return cls(broker.client if isinstance(broker, RedisBroker) else None, message_id)

    def hold(self, delivery_ids: Sequence[int]) -> None:
        """Write down deliveries about to be posted; raises when Redis does not answer (post none then)."""
        if self.client is not None and delivery_ids:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.sadd(self.key, *delivery_ids)
                pipe.pexpire(self.key, IN_FLIGHT_TTL_MS)
                pipe.execute()

    def done(self, delivery_ids: Sequence[int]) -> None:
        """Strike out deliveries whose attempts were recorded (or left to the sweep). Best effort: one
        left in the set is only enqueued again if this job is redelivered, and its job skips it."""
        if self.client is not None and delivery_ids:
            try:
                self.client.srem(self.key, *delivery_ids)
            except redis.RedisError:
                logger.warning("could not strike out %d deliveries of %s", len(delivery_ids), self.key)

    def recover(self) -> list[int]:
        """The deliveries an earlier run of this job (a worker killed) had under way, taken off the record."""
        if self.client is None:
            return []
        with self.client.pipeline(transaction=True) as pipe:
            pipe.smembers(self.key)
            pipe.delete(self.key)
            members, _ = pipe.execute()
        return sorted(int(member) for member in members)

    def finish_later(self, future: concurrent.futures.Future[None]) -> None:
        """A finisher's work for this job, which `settle` waits for."""
        with self._lock:
            self._finishing = [pending for pending in self._finishing if not pending.done()]
            self._finishing.append(future)

    def settle(self) -> None:
        """Wait until the finishers have recorded what this job posted (each posting has a time limit);
        a finisher may hand a slow endpoint on to another, which is waited for too."""
        while True:
            with self._lock:
                finishing, self._finishing = self._finishing, []
            if not finishing:
                return
            concurrent.futures.wait(finishing)


def recover(runtime: Runtime, in_flight: InFlight, enqueue: Enqueue) -> int:
    """Enqueue, as jobs, what an earlier run of the relay job had under way when its worker died;
    how many. Their jobs skip the deliveries recorded meanwhile."""
    held = in_flight.recover()
    if held:
        logger.warning("relay job %s ran before and left %d deliveries under way: enqueued", in_flight.key, len(held))
        delivery.lease(runtime, held)
        delivery.requeue(runtime, held, 0, enqueue, due=utcnow())
    return len(held)


@dataclass
class _Started:
    """One endpoint's deliveries the relay posts: its slots taken, and the requests under way."""

    group: list[DeliveryJob]
    slots: int
    posting: Posting | None = None


def post(
    runtime: Runtime, jobs: Sequence[DeliveryJob], enqueue: Enqueue, in_flight: InFlight, *, gather: float = GATHER
) -> list[int]:
    """Post new deliveries of a relay pass now, every endpoint at once; the ids left for jobs, in the
    order given (see the module's docstring for which, and what a post promises)."""
    client = runtime.webhook_client
    if not isinstance(client, WebhookClient):
        return [job.delivery_id for job in jobs]  # their jobs say what is wrong with it
    now = utcnow()
    left: list[int] = []
    signed: list[tuple[list[DeliveryJob], list[Prepare]]] = []
    for group in delivery.by_endpoint(jobs):
        requests = _requests(runtime, group, now)
        if requests is None:
            left.extend(job.delivery_id for job in group)
        else:
            signed.append((group, requests))
    ready = _take_slots(signed, left)
    if ready and not _hold(in_flight, [started for started, _ in ready]):
        left.extend(job.delivery_id for started, _ in ready for job in started.group)
        ready = []
    started: list[_Started] = []
    for inline, requests in ready:
        inline.posting = _submit(client, inline, requests)
        if inline.posting is None:
            left.extend(job.delivery_id for job in inline.group)
            in_flight.done([job.delivery_id for job in inline.group])
        else:
            started.append(inline)
    if started:
        in_flight.finish_later(_finishers.submit(_gather_and_record, runtime, started, enqueue, in_flight, gather))
    order = {job.delivery_id: index for index, job in enumerate(jobs)}
    return sorted(left, key=order.__getitem__)


def _requests(runtime: Runtime, group: list[DeliveryJob], now: datetime) -> list[Prepare] | None:
    """The group's requests, or None when it is left to a job."""
    first = group[0]
    if first.ordered or first.rate_limit_per_second or first.paused or first.disabled:
        return None
    try:
        return [delivery.prepare(job, delivery.signers(job, runtime.secret_box, now)) for job in group]
    except UndecryptableSecret:
        return None


def _take_slots(
    signed: list[tuple[list[DeliveryJob], list[Prepare]]], left: list[int]
) -> list[tuple[_Started, list[Prepare]]]:
    """Take the endpoints' slots in one go; the groups that got some. Those of the others go to `left`."""
    if not signed:
        return []
    try:
        taken = acquire_slots_of([(group[0].endpoint_id, min(delivery.LANES, len(group))) for group, _ in signed])
    except Exception:
        note_unsent(logger, "could not take %d endpoints' slots; their deliveries go by job", len(signed))
        taken = [0] * len(signed)
    ready: list[tuple[_Started, list[Prepare]]] = []
    for (group, requests), slots in zip(signed, taken, strict=True):
        if slots:
            ready.append((_Started(group, slots), requests))
        else:
            left.extend(job.delivery_id for job in group)
    return ready


def _hold(in_flight: InFlight, ready: Sequence[_Started]) -> bool:
    """Write down what is about to be posted; False (slots given back) when it could not be."""
    try:
        in_flight.hold([job.delivery_id for started in ready for job in started.group])
    except Exception:
        note_unsent(logger, "could not write down a relay pass's deliveries; they go by job")
        _give_back(ready)
        return False
    return True


def _submit(client: WebhookClient, started: _Started, requests: list[Prepare]) -> Posting | None:
    try:
        return client.poster.submit_all(
            requests, lanes=started.slots, budget=delivery.BATCH_BUDGET, timeout=delivery.request_timeout(client)
        )
    except Exception:
        # Nothing was sent (the poster's loop would not start): its job tries again.
        endpoint_id = started.group[0].endpoint_id
        logger.exception("endpoint %s: the relay could not post; its deliveries go by job", endpoint_id)
        _give_back([started])
        return None


def _gather_and_record(
    runtime: Runtime, started: list[_Started], enqueue: Enqueue, in_flight: InFlight, gather: float
) -> None:
    """A finisher's work for a pass: what is answered within `gather` seconds recorded together, each
    endpoint still answering then on its own (another finisher)."""
    futures = [inline.posting.future for inline in started if inline.posting and inline.posting.future]
    concurrent.futures.wait(futures, timeout=gather)
    done: list[_Started] = []
    slow: list[_Started] = []
    for inline in started:  # each looked at once: one answered meanwhile is in one list only
        (done if inline.posting is None or inline.posting.done() else slow).append(inline)
    if done:
        finish(runtime, done, enqueue, in_flight)
    for inline in slow:
        in_flight.finish_later(_finishers.submit(finish, runtime, [inline], enqueue, in_flight))


def finish(runtime: Runtime, posted: Sequence[_Started], enqueue: Enqueue, in_flight: InFlight) -> None:
    """Record what the relay's posts came to: every endpoint's successes in one transaction, each failure
    on its own after the successes before it, what was not sent (a budget used up) enqueued. Never
    raises: it may run on a finisher, and what is not recorded is leased (sent again once the lease ends).
    """
    answered: list[tuple[_Started, list[Outcome]]] = []
    for inline in posted:
        try:
            answered.append((inline, inline.posting.outcomes() if inline.posting is not None else []))
        except Exception:
            endpoint_id = inline.group[0].endpoint_id
            logger.exception("endpoint %s: the relay's posts were lost; the sweep sends them", endpoint_id)
    _give_back(posted)
    successes: list[tuple[DeliveryJob, AttemptOutcome]] = []
    for inline, outcomes in answered:
        try:
            successes.extend(_record_failures(runtime, inline.group, outcomes, enqueue))
        except Exception:
            logger.exception("endpoint %s: the relay's failed attempts were not recorded", inline.group[0].endpoint_id)
    try:
        delivery.record_successes(runtime, successes)
    except Exception:
        logger.exception("%d deliveries posted by the relay were not recorded as delivered", len(successes))
    in_flight.done([job.delivery_id for inline in posted for job in inline.group])


def _record_failures(
    runtime: Runtime, group: Sequence[DeliveryJob], outcomes: Sequence[Outcome], enqueue: Enqueue
) -> list[tuple[DeliveryJob, AttemptOutcome]]:
    """Record one endpoint's failures, each after the successes before it (so that the endpoint's failing
    streak starts with it), and enqueue what was not sent; returns the successes still to record."""
    successes: list[tuple[DeliveryJob, AttemptOutcome]] = []
    for job, sent in zip(group, outcomes, strict=False):
        outcome = delivery.attempt_outcome(sent)
        if outcome.succeeded:
            successes.append((job, outcome))
            continue
        delivery.record_successes(runtime, successes)
        successes = []
        delivery.record_failure(runtime, job, outcome, enqueue)
    rest = [job.delivery_id for job in group[len(outcomes) :]]
    if rest and not any(sent.gone for sent in outcomes):  # after a 410 the rest waits for the endpoint
        delivery.lease(runtime, rest)
        delivery.requeue(runtime, rest, 0, enqueue, due=utcnow())
    return successes


def _give_back(posted: Sequence[_Started]) -> None:
    try:
        release_slots_of([(started.group[0].endpoint_id, started.slots) for started in posted])
    except Exception:
        note_unsent(logger, "could not give back the slots of %d endpoints; they expire", len(posted))
