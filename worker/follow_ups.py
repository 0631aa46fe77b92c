"""The scheduler's sweep of follow-ups: work a commit owes that its job has not done (see
store/services/follow_ups.py for what is recorded, by whom, and how a job clears it).

A change records what it owes in its own transaction and queues the job after the commit; when
the broker is down then, or the job is lost, the row stays and this sweep queues the job again
once it is due (`follow_ups.GRACE` after the change), then after a doubling delay while it stays
owed. Every job is idempotent, so one queued twice does its work once.

Follow-ups that need none of this, and why:

- Webhook events: the outbox is durable already (the relay and the deliveries' sweep).
- Invitation emails: an unsent invitation is its own record (`maintenance.resend_unsent_invitations`).
- Directory and calendar syncs: `sync_requested_at` is the record, re-queued by the polls.
- Push channels (directory and calendar): opened or renewed by the scheduler's `channels` jobs.
- Resource Guru deliveries: kept until applied, re-queued by `peers.poll`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial

from store.columns import utcnow
from store.db import transaction
from store.services import follow_ups
from worker.queue import ActorName, Queue
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

Send = Callable[[int], object]
_, _, _BUSY_ONLY = follow_ups.CALENDAR_SETTINGS  # the setting a second blanking is about


def _senders(queue: Queue) -> dict[str, Send]:
    """How each kind is queued: the job that does it."""
    send = queue.send
    senders: dict[str, Send] = {
        follow_ups.CALENDAR_WRITE: partial(send, ActorName.WRITE_BOOKING),
        follow_ups.CONNECTION_CALENDARS: lambda connection_id: send(ActorName.FOLLOW_CONNECTION, connection_id, True),
        follow_ups.BLANK_AGAIN: lambda organisation_id: send(
            ActorName.REEVALUATE_ORGANISATION, organisation_id, [_BUSY_ONLY], True
        ),
        follow_ups.CALENDAR_JUDGE: lambda calendar_id: send(ActorName.REEVALUATE_CALENDAR, calendar_id, False),
        follow_ups.CALENDAR_REREAD: lambda calendar_id: send(ActorName.REEVALUATE_CALENDAR, calendar_id, True),
        follow_ups.REMOVALS_HELD_MAIL: partial(send, ActorName.TELL_REMOVALS_HELD),
    }
    for name in follow_ups.CALENDAR_SETTINGS:
        senders[name] = partial(_settings_changed, queue, name)
    return senders


def _settings_changed(queue: Queue, name: str, organisation_id: int) -> None:
    queue.send(ActorName.REEVALUATE_ORGANISATION, organisation_id, [name])


def sweep(runtime: Runtime, *, now: datetime | None = None, limit: int = 500) -> int:
    """The scheduler's job: queue every follow-up due by `now` (oldest first, `limit` a run) and put
    it off by its next delay; one queued as often as it will be is given up (logged). Stops at the
    first send the broker refuses: the rest stay due for the next run. Returns how many were queued."""
    now = now or utcnow()
    senders = _senders(runtime.queue)
    queued = 0
    with transaction(runtime.session_factory) as session:
        for row in follow_ups.due(session, now=now, limit=limit):
            if follow_ups.exhausted(row):
                logger.warning("gave up %s of %d after %d attempts", row.kind, row.target_id, row.attempts)
                session.delete(row)
                continue
            send = senders.get(row.kind)
            if send is None:  # recorded by a newer version during an upgrade: left for it
                logger.warning("no job for follow-up kind %s; left owed", row.kind)
                follow_ups.postpone(row, now)
                continue
            try:
                send(row.target_id)
            except Exception:
                logger.warning("could not queue %s of %d; the next sweep will", row.kind, row.target_id, exc_info=True)
                break
            follow_ups.postpone(row, now)
            queued += 1
    if queued:
        logger.info("queued %d follow-ups left owed", queued)
    return queued


Seen = list[tuple[str, int, int | None]]  # (kind, target, generation seen)


def starting(runtime: Runtime, *kinds_and_targets: tuple[str, int]) -> Seen:
    """What a job starting its work owes, as it is now: hand it to `finished` when the work is done."""
    if not kinds_and_targets:
        return []
    with transaction(runtime.session_factory) as session:
        return [(kind, target, follow_ups.seen(session, kind, target)) for kind, target in kinds_and_targets]


def finished(runtime: Runtime, seen: Seen) -> None:
    """The work owed as `seen` is done: clear it (one asked for again meanwhile stays owed)."""
    if any(generation is not None for _, _, generation in seen):
        with transaction(runtime.session_factory) as session:
            for kind, target, generation in seen:
                follow_ups.done(session, kind, target, generation)


def put_off(runtime: Runtime, seen: Seen) -> None:
    """The work owed as `seen` failed and the queue retries its job (for hours, with backoff): the
    sweep leaves it alone meanwhile, and takes it up if the retries end without doing it."""
    if any(generation is not None for _, _, generation in seen):
        until = utcnow() + follow_ups.MAX_DELAY
        with transaction(runtime.session_factory) as session:
            for kind, target, generation in seen:
                follow_ups.put_off(session, kind, target, generation, until)


@contextmanager
def owed(runtime: Runtime, *kinds_and_targets: tuple[str, int]) -> Iterator[None]:
    """Around a job's work: the follow-ups named (kind, target) are cleared when the work ends
    without raising, as they were when it started."""
    seen = starting(runtime, *kinds_and_targets)
    yield
    finished(runtime, seen)
