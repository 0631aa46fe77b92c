"""Every Dramatiq actor, declared once: its name, queue, retries, limits and body.

Nothing binds at import: `bind(broker)` makes the actors on the broker the composition root built
(deskbridge.wiring) when the runtime starts, and returns the `Queue` every sender goes through
(worker/queue.py). The bodies are one line each: they hand the message to the module that does the
work, with this process's runtime. Every actor is idempotent: Dramatiq delivers at least once.

Names and queues are what messages already in Redis carry: change neither.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from infra.redis_client import note_unsent
from worker import after_commit, channels, invitations, runtime, sign_in_links
from worker.calendar import batch, outbound, reevaluate
from worker.calendar import jobs as calendar_jobs
from worker.calendar import sync as calendar_sync
from worker.directory import held_mail
from worker.directory import sync as directory_sync
from worker.peers import hooks
from worker.queue import ActorName, Queue
from worker.webhooks import delivery, enqueue, inline

logger = logging.getLogger(__name__)

EMAIL, WEBHOOKS, RELAY, DIRECTORY, CALENDAR = "email", "webhooks", "relay", "directory", "calendar"
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Declared:
    """One actor: what messages name it by, the queue it is consumed from, Dramatiq's retry options
    (ms) and time limit (ms; Dramatiq's default of 10 minutes when None), and its body."""

    name: ActorName
    queue: str
    fn: Callable[..., None]
    max_retries: int
    min_backoff: int
    max_backoff: int
    time_limit: int | None = None

    def options(self) -> dict[str, Any]:
        """The options Dramatiq's middleware reads (Retries, TimeLimit)."""
        chosen: dict[str, Any] = {
            "max_retries": self.max_retries,
            "min_backoff": self.min_backoff,
            "max_backoff": self.max_backoff,
        }
        if self.time_limit is not None:
            chosen["time_limit"] = self.time_limit
        return chosen


# --- the bodies ------------------------------------------------------------------------------------


def send_invitation_email(invitation_id: int) -> None:
    """Email the accept link of a pending invitation (no-op if already sent or no longer pending)."""
    invitations.send(runtime.current(), invitation_id)


def send_invitation_emails(invitation_ids: list[int]) -> None:
    """Email several invitations. One the mail server refuses goes on as a job of its own, so its
    retries are its own and the others are not sent again (sending twice is a no-op anyway)."""
    worker_runtime = runtime.current()
    for invitation_id in invitation_ids:
        try:
            invitations.send(worker_runtime, invitation_id)
        except Exception:
            note_unsent(logger, "invitation %d was not sent; retried on its own", invitation_id)
            worker_runtime.queue.send(ActorName.SEND_INVITATION_EMAIL, invitation_id)


def send_sign_in_email(link_id: int) -> None:
    """Email a console sign-in link (no-op if already sent, used or expired)."""
    sign_in_links.send(runtime.current(), link_id)


def deliver_webhooks(delivery_ids: list[int]) -> None:
    """Attempt deliveries of one endpoint, in the order given, several at once (see delivery.attempt_batch)."""
    worker_runtime = runtime.current()
    delivery.attempt_batch(worker_runtime, delivery_ids, partial(enqueue.deliveries, worker_runtime.queue))


def deliver_in_order(delivery_ids: list[int]) -> None:
    """Attempt a resumed endpoint's backlog one delivery after the other, in event order; what it
    hands on (the rest of a long backlog, a short retry) stays in order too."""
    worker_runtime = runtime.current()
    delivery.attempt_batch(worker_runtime, delivery_ids, partial(enqueue.in_order, worker_runtime.queue), in_order=True)


def deliver_webhook(delivery_id: int) -> None:
    """Attempt one webhook delivery (a job queued by an earlier version)."""
    worker_runtime = runtime.current()
    delivery.attempt_batch(worker_runtime, [delivery_id], partial(enqueue.deliveries, worker_runtime.queue))


def relay_outbox(handover: str | None = None) -> None:
    """Turn committed events into deliveries, post a small pass's itself and enqueue the others, and go
    on while commits keep coming. `handover`: the token of a busy relay job this one takes over from."""
    worker_runtime = runtime.current()
    queue = worker_runtime.queue
    send = partial(enqueue.deliveries, queue)
    message = CurrentMessage.get_current_message()
    in_flight = inline.InFlight.of(queue.broker, message.message_id if message else uuid.uuid4().hex)
    inline.recover(worker_runtime, in_flight, send)
    post = partial(inline.post, worker_runtime, enqueue=send, in_flight=in_flight)
    try:
        after_commit.relay_while_busy(
            queue.broker,
            partial(delivery.relay, worker_runtime, send, post=post),
            taking_over=handover,
            hand_over=lambda token: queue.send(ActorName.RELAY_OUTBOX, token),
        )
    finally:
        in_flight.settle()  # the message is acknowledged once what it posted is recorded


def sync_connection(connection_id: int) -> None:
    """Read the connection's directory and apply what changed (no-op while another sync holds it)."""
    directory_sync.run(runtime.current(), connection_id)


def tell_removals_held(connection_id: int) -> None:
    """Email the organisation's admins that the connection holds removals for them (once per hold)."""
    held_mail.tell_admins(runtime.current(), connection_id)


def ensure_channels(connection_id: int, recreate: bool = False) -> None:
    """Open (or, with `recreate`, reopen) a connection's push channels and renew those about to expire."""
    channels.ensure(runtime.current(), connection_id, recreate=recreate)


def apply_envelopes(connection_id: int) -> None:
    """Apply every Resource Guru delivery of the connection still waiting (nothing when there is none)."""
    hooks.apply_waiting(runtime.current(), connection_id)


def sync_calendar(calendar_id: int) -> None:
    """Read the calendar's window and apply what changed (no-op while another sync holds it)."""
    calendar_sync.run(runtime.current(), calendar_id)


def sync_calendars(connection_id: int, calendar_ids: list[int]) -> None:
    """Read these calendars of one connection and apply what changed (those another sync holds are skipped)."""
    batch.run(runtime.current(), connection_id, calendar_ids)


def write_booking(booking_id: int) -> None:
    """Bring the booking's calendars in line with it (idempotent: a redelivered job writes nothing)."""
    outbound.write(runtime.current(), booking_id)


def follow_connection(connection_id: int, retry: bool = False) -> None:
    """Bring a connection's calendars in line (see worker.calendar.jobs.follow)."""
    calendar_jobs.follow(runtime.current(), connection_id, retry=retry)


def ensure_calendar_channels(calendar_id: int, recreate: bool = False) -> None:
    """Open (or, with `recreate`, reopen) a calendar's push channel, or renew it when about to expire."""
    channels.ensure_calendar(runtime.current(), calendar_id, recreate=recreate)


def reevaluate_organisation(organisation_id: int, changed: list[str], again: bool = False) -> None:
    """Bring the organisation's stored calendar events in line with the settings named (see reevaluate.plan)."""
    reevaluate.plan(runtime.current(), organisation_id, changed, again=again)


def reevaluate_calendar(calendar_id: int, reread: bool = False) -> None:
    """Bring one calendar's stored events in line with the organisation's office rules (see
    reevaluate.bring_in_line)."""
    reevaluate.bring_in_line(runtime.current(), calendar_id, reread=reread)


# --- the table -------------------------------------------------------------------------------------

DECLARED: tuple[Declared, ...] = (
    Declared(ActorName.SEND_INVITATION_EMAIL, EMAIL, send_invitation_email, 10, 5_000, 600_000),
    Declared(ActorName.SEND_INVITATION_EMAILS, EMAIL, send_invitation_emails, 10, 5_000, 600_000),
    # Few retries, soon: a sign-in link is wanted now and lasts minutes; asking again makes a new one.
    Declared(ActorName.SEND_SIGN_IN_EMAIL, EMAIL, send_sign_in_email, 3, 2_000, 30_000),
    # Our own schedule retries failed deliveries (store.services.delivery_attempts.record_attempt);
    # Dramatiq's retries only cover a crash in between (a finished delivery is skipped).
    Declared(ActorName.DELIVER_WEBHOOKS, WEBHOOKS, deliver_webhooks, 3, 1_000, 30_000),
    Declared(ActorName.DELIVER_IN_ORDER, WEBHOOKS, deliver_in_order, 3, 1_000, 30_000),
    Declared(ActorName.DELIVER_WEBHOOK, WEBHOOKS, deliver_webhook, 3, 1_000, 30_000),
    Declared(ActorName.RELAY_OUTBOX, RELAY, relay_outbox, 3, 200, 5_000),
    # A failed sync is recorded on its connection or calendar and tried again by the poll; Dramatiq's
    # retries only cover a crash in between.
    Declared(ActorName.SYNC_CONNECTION, DIRECTORY, sync_connection, 3, 5_000, 300_000, HOUR_MS),
    Declared(ActorName.ENSURE_CHANNELS, DIRECTORY, ensure_channels, 3, 5_000, 300_000),
    # A mail server that refuses is tried again for about an hour, then by the follow-up sweep.
    Declared(ActorName.TELL_REMOVALS_HELD, DIRECTORY, tell_removals_held, 6, 10_000, 600_000),
    Declared(ActorName.APPLY_ENVELOPES, DIRECTORY, apply_envelopes, 3, 5_000, 300_000),
    Declared(ActorName.SYNC_CALENDAR, CALENDAR, sync_calendar, 3, 5_000, 300_000, HOUR_MS // 2),
    Declared(ActorName.SYNC_CALENDARS, CALENDAR, sync_calendars, 3, 5_000, 300_000, HOUR_MS // 2),
    # A calendar that refuses is retried for about a day (a throttled mailbox, a revoked grant restored).
    Declared(ActorName.WRITE_BOOKING, CALENDAR, write_booking, 12, 10_000, HOUR_MS),
    Declared(ActorName.FOLLOW_CONNECTION, CALENDAR, follow_connection, 3, 5_000, 300_000),
    Declared(ActorName.ENSURE_CALENDAR_CHANNELS, CALENDAR, ensure_calendar_channels, 3, 5_000, 300_000),
    Declared(ActorName.REEVALUATE_ORGANISATION, CALENDAR, reevaluate_organisation, 3, 5_000, 300_000),
    # A sync holding the calendar makes the job wait its turn: up to about an hour of retries.
    Declared(ActorName.REEVALUATE_CALENDAR, CALENDAR, reevaluate_calendar, 20, 10_000, 300_000, HOUR_MS // 2),
)


def bind(broker: dramatiq.Broker) -> Queue:
    """Declare every actor on `broker` and return the table senders go through. Once per broker:
    Dramatiq refuses a second actor of one name on a broker."""
    # The relay job writes down what it posts itself under its message's id (worker.webhooks.inline),
    # and ends when the worker stops (after_commit.relay_while_busy).
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(after_commit.StopRelaying())
    bound: dict[ActorName, dramatiq.Actor[..., Any]] = {}
    for declared in DECLARED:
        options = declared.options()
        unknown = set(options) - broker.actor_options
        if unknown:  # as @dramatiq.actor checks: an option no middleware reads is a mistake
            raise ValueError(f"{declared.name}: options {sorted(unknown)} are read by no middleware of the broker")
        bound[declared.name] = dramatiq.Actor(
            declared.fn,
            broker=broker,
            actor_name=declared.name.value,
            queue_name=declared.queue,
            priority=0,
            options=options,
        )
    return Queue(broker, bound)
