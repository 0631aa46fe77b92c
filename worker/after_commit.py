"""What a commit sets off: the outbox relay's job and invitation emails (named for when it runs; the
relay itself is store/services/outbox_relay.py, run by the `relay_outbox` job).

Called by the store after every commit (see store.outbox.install) with the events it made visible.
It must never raise: the change is committed whatever happens here, and the scheduler's relay job
and sweeps pick up whatever was not enqueued (the broker being down, say). Nothing here needs a
follow-up record (store/services/follow_ups.py): unrelayed events are the relay's record, and an
invitation never sent is its own (`maintenance.resend_unsent_invitations`).

The relay takes every event waiting, so a burst of commits needs one relay job, not one each:

- On Redis, a commit enqueues a relay job only when none is waiting or running (worker/coalesce.py,
  under `PENDING_KEY`), and in the same round trip pushes to `WAKE_KEY`. The job does not end with
  its pass: while commits keep coming it stays (`relay_while_busy`), holding `PENDING_KEY` and waiting
  on `WAKE_KEY` (BLPOP) between passes, so a steady trickle of commits costs a pass each, not a job
  each; its passes start PASS_INTERVAL apart at least, so commits closer together share one.
  Idle for LINGER_SECONDS (or busy for BUSY_SECONDS, so that a worker thread is handed back now and
  then), it clears the key (`relay_starting`: commits from then on enqueue another job) and makes a
  last pass for the commits that came before. A lost job only costs an extra one later (the key
  expires; the scheduler relays every 2 s anyway). No delay, so the job does not go through a delay
  queue.
- In-process (the embedded mode), at most one relay job per RELAY_WINDOW from this process: a commit
  within the window of the last one schedules one at the window's end, unless one is scheduled already.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from dramatiq.brokers.redis import RedisBroker

from infra.redis_client import note_unsent
from store.models import OutboxEvent
from worker import coalesce, runtime
from worker.directory import jobs as directory_jobs
from worker.queue import ActorName, Queue

logger = logging.getLogger(__name__)

RELAY_WINDOW = 0.02
PENDING_KEY = "deskbridge:relay-pending"
WAKE_KEY = "deskbridge:relay-wake"
PENDING_TTL_MS = 2_000
# A relay job waits this long for another commit before it ends.
LINGER_SECONDS = 1.0
# A relay job kept busy hands its thread back after about this long (the next commit starts another).
BUSY_SECONDS = 10.0
# Passes of a relay job start at least this far apart: commits coming faster share a pass, and the
# delivery jobs it enqueues (a job per endpoint and pass), at the cost of this much latency at most.
PASS_INTERVAL = 0.02

_lock = threading.Lock()
_relay_at = 0.0  # monotonic time the latest relay job was scheduled to run


def on_commit(events: list[OutboxEvent]) -> None:
    """Enqueue the work that follows from `events`: the webhook relay, invitation emails, and the email
    about removals a connection holds (its follow-up is their durable record)."""
    try:
        queue = runtime.current().queue
        _relay_soon(queue)
        invited = [event.data["invitation_id"] for event in events if event.type == "membership.invited"]
        if invited:
            enqueue_invitation_emails(queue, invited)
        held = {event.data["connection_id"] for event in events if event.type == "connection.removals_held"}
        for connection_id in sorted(held):
            directory_jobs.enqueue_held_mail(queue, connection_id)
    except Exception:
        note_unsent(logger, "could not enqueue the work for %d events; the scheduler will catch up", len(events))


def relay_starting(broker: object) -> None:
    """Called by the relay job before it reads the events: commits from now on enqueue another job."""
    coalesce.starting(broker, PENDING_KEY)


INVITATION_BATCH = 100  # invitations a message: a directory's first sync brings in thousands at once


def enqueue_invitation_emails(queue: Queue, invitation_ids: list[int]) -> None:
    """Queue the emails of invitations just committed: one message each when few, batches when many.
    May raise (its caller, `on_commit`, does not): an invitation not sent is its own record, and
    `maintenance.resend_unsent_invitations` queues it again."""
    if len(invitation_ids) == 1:
        queue.send(ActorName.SEND_INVITATION_EMAIL, invitation_ids[0])
        return
    for start in range(0, len(invitation_ids), INVITATION_BATCH):
        queue.send(ActorName.SEND_INVITATION_EMAILS, invitation_ids[start : start + INVITATION_BATCH])


def relay_while_busy(broker: object, relay_once: Callable[[], object]) -> None:
    """The relay job: `relay_once` now, and again after each commit while commits keep coming (on
    Redis; elsewhere once). Ends after LINGER_SECONDS without a commit or BUSY_SECONDS in all, with
    the hand-over that makes the next commit enqueue a job: the key cleared, then a last pass."""
    if not isinstance(broker, RedisBroker):
        relay_starting(broker)
        relay_once()
        return
    client = broker.client
    started = held = time.monotonic()
    try:
        client.set(PENDING_KEY, b"1", px=PENDING_TTL_MS)  # held while this job runs: commits only wake it
        while True:
            passed = time.monotonic()
            relay_once()
            now = time.monotonic()
            if now - started > BUSY_SECONDS:
                break
            if now - held > PENDING_TTL_MS / 4000:
                client.set(PENDING_KEY, b"1", px=PENDING_TTL_MS)
                held = now
            if client.blpop([WAKE_KEY], timeout=LINGER_SECONDS) is None:
                break
            time.sleep(max(0.0, passed + PASS_INTERVAL - time.monotonic()))
    except redis.RedisError:
        logger.warning("the relay job lost Redis; it hands over to the next commit or the scheduler", exc_info=True)
    except BaseException:
        relay_starting(broker)  # Dramatiq retries the job; commits meanwhile enqueue one of their own
        raise
    relay_starting(broker)
    relay_once()


def _relay_soon(queue: Queue) -> None:
    if isinstance(queue.broker, RedisBroker):
        coalesce.send_unless_waiting(queue, ActorName.RELAY_OUTBOX, PENDING_KEY, ttl_ms=PENDING_TTL_MS, wake=WAKE_KEY)
    else:
        _relay_in_window(queue)


def _relay_in_window(queue: Queue) -> None:
    """Schedule a relay job unless one is already scheduled to run after now (it will see these events)."""
    global _relay_at
    with _lock:
        now = time.monotonic()
        if _relay_at > now:
            return
        delay = max(0.0, _relay_at + RELAY_WINDOW - now)
        _relay_at = now + delay
    queue.send(ActorName.RELAY_OUTBOX, delay_ms=int(delay * 1000) or None)
