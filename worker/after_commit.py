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
  its pass: one relay job at a time is the relay (`OWNER_KEY`), holding `PENDING_KEY` and waiting on
  `WAKE_KEY` (BLPOP) between passes, while commits come and while none does, so a steady trickle of
  commits costs a pass each, not a job each, and a commit after a quiet spell is relayed at once
  (a new job would wait for Dramatiq's consumer, which polls an idle queue once a second); its passes
  start PASS_INTERVAL apart at least, so commits closer together share one. Every BUSY_SECONDS it
  hands over to a successor job without a gap (`relay_while_busy`); it ends when its worker stops,
  clearing the keys (commits from then on enqueue another job) and making a last pass for the commits
  that came before. A lost job only costs an extra one later (the keys expire; the scheduler relays
  every 2 s anyway). No delay, so the job does not go through a delay queue.
- In-process (the embedded mode), at most one relay job per RELAY_WINDOW from this process: a commit
  within the window of the last one schedules one at the window's end, unless one is scheduled already.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import dramatiq
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
# A relay job waits this long for a commit at a time; one without a successor to hand over to ends then.
LINGER_SECONDS = 1.0
# A relay job hands over to a successor after about this long, so that no job runs for ever (Dramatiq's
# time limit, a worker's shutdown).
BUSY_SECONDS = 10.0
# The token of the relay job that is the relay (see relay_while_busy); it expires when that job's
# worker died, and the next commit's job becomes the relay.
OWNER_KEY = "deskbridge:relay-owner"
OWNER_TTL_MS = 5_000
# A relay job's successor says on HANDOVER_PREFIX + the token of the job it takes over from that it
# started; the list is left to expire when that job is gone.
HANDOVER_PREFIX = "deskbridge:relay-handover:"
HANDOVER_TTL_MS = 60_000
# Set while this process's worker stops: its relay job ends at once.
STOPPING = threading.Event()
# KEYS: OWNER_KEY, PENDING_KEY, the hand-over list of the job before; ARGV: token, the token it takes
# over from (or ""), the keys' TTLs (ms). The job becomes (or stays) the relay unless another job is;
# taking over, it tells the one before.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and owner ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
if ARGV[2] ~= '' and owner == ARGV[2] then
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], 60000)
end
return 1
"""
# KEYS: OWNER_KEY, PENDING_KEY; ARGV: token. The relay lets go, if it still is the relay.
_LET_GO = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return 0
"""
# Passes of a relay job start at least this far apart: commits coming faster share a pass, and the
# delivery jobs it enqueues (a job per endpoint and pass), at the cost of this much latency at most.
PASS_INTERVAL = 0.04

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


def relay_while_busy(
    broker: object,
    relay_once: Callable[[], object],
    *,
    taking_over: str | None = None,
    hand_over: Callable[[str], None] | None = None,
) -> None:
    """The relay job: `relay_once` now, and again after each commit (on Redis; elsewhere once).

    On Redis one relay job at a time is the relay (`OWNER_KEY` holds its token); another that starts
    meanwhile (Dramatiq putting back the job of a worker that died) makes one pass and ends. The
    relay holds `PENDING_KEY`, so that commits only wake it, and waits on `WAKE_KEY` between passes.
    With `hand_over` it stays while idle too, so that a commit after a quiet spell is relayed at once
    rather than after a job was fetched: every BUSY_SECONDS it sends a successor (`hand_over` is
    given its token; the successor starts with `taking_over` set to it) and keeps relaying until the
    successor says on `HANDOVER_PREFIX + token` that it took over, then ends. It ends too when no
    successor came within BUSY_SECONDS more, when the worker stops (`STOPPING`), and, without
    `hand_over`, after LINGER_SECONDS without a commit; then with the hand-over that makes the next
    commit enqueue a job: the keys cleared, then a last pass.
    """
    if not isinstance(broker, RedisBroker):
        relay_starting(broker)
        relay_once()
        return
    client = broker.client
    token = uuid.uuid4().hex
    try:
        if not _claim(client, token, taking_over):
            relay_once()  # another job is the relay: this one only makes sure nothing it saw waits
            return
        if _relay_until_idle(client, token, relay_once, hand_over):
            return  # handed over: the successor is the relay now
    except redis.RedisError:
        logger.warning("the relay job lost Redis; it hands over to the next commit or the scheduler", exc_info=True)
    except BaseException:
        _let_go(client, token)  # Dramatiq retries the job; commits meanwhile enqueue one of their own
        raise
    _let_go(client, token)
    relay_once()


def _relay_until_idle(
    client: redis.Redis, token: str, relay_once: Callable[[], object], hand_over: Callable[[str], None] | None
) -> bool:
    """The relay's loop; True when it ended by handing over to a successor, False when it should let go."""
    handed_over = f"{HANDOVER_PREFIX}{token}".encode()
    started = held = passed = time.monotonic()
    sent_at: float | None = None  # when the successor was sent
    relay_once()
    while not STOPPING.is_set():
        now = time.monotonic()
        if now - started > BUSY_SECONDS:
            if hand_over is None or (sent_at is not None and now - sent_at > BUSY_SECONDS):
                return False  # no successor, or none started
            if sent_at is None:
                if not _hand_over(hand_over, token):
                    return False
                sent_at = now
        if now - held > PENDING_TTL_MS / 4000:
            if not _claim(client, token, None):
                return True  # another job took over (this one was too slow to say it still runs)
            held = now
        woken = client.blpop([WAKE_KEY] if sent_at is None else [handed_over, WAKE_KEY], timeout=LINGER_SECONDS)
        if woken is None:
            if hand_over is None:
                return False
            continue
        if woken[0] == handed_over:
            return True
        time.sleep(max(0.0, passed + PASS_INTERVAL - time.monotonic()))
        passed = time.monotonic()
        relay_once()
    return False


def _claim(client: redis.Redis, token: str, previous: str | None) -> bool:
    """Make the job of `token` the relay (or keep it so), unless another job is; `previous`: the token of
    the job it takes over from."""
    said = f"{HANDOVER_PREFIX}{previous or token}"
    claimed = client.eval(_CLAIM, 3, OWNER_KEY, PENDING_KEY, said, token, previous or "", OWNER_TTL_MS, PENDING_TTL_MS)
    return bool(claimed)


def _let_go(client: redis.Redis, token: str) -> None:
    """The relay ends: commits from now on enqueue another job (the keys cleared if still its own).
    Best effort: they expire on their own."""
    try:
        client.eval(_LET_GO, 2, OWNER_KEY, PENDING_KEY, token)
    except redis.RedisError:
        logger.warning("could not clear the relay's keys; they expire on their own", exc_info=True)


def _hand_over(hand_over: Callable[[str], None], token: str) -> bool:
    """Send the successor job; False when it could not be sent."""
    try:
        hand_over(token)
    except Exception:
        note_unsent(logger, "could not hand the relay over to a new job; the next commit enqueues one")
        return False
    return True


class StopRelaying(dramatiq.Middleware):
    """Tells the relay job of this process that the worker stops (`STOPPING`), so that it ends at once."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """A worker starts in this process: relay jobs stay again."""
        STOPPING.clear()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """The worker stops: a relay job ends after its pass under way."""
        STOPPING.set()


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
