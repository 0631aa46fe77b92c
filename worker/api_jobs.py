"""The worker's side of the API's port (`api.jobs.Jobs`): the work a request asks for, queued.

The API imports nothing of the worker; the composition root (deskbridge/wiring.py) hands it a
`QueuedJobs` on this process's runtime. Each method queues the job that does the work through the
runtime's bound actors (worker/queue.py) and never raises for a queue that is down: what each
lost send costs, and who makes it up, is said by the sender it calls. Two are done at once, in the
request: closing a connection's channels (its credentials are deleted right after) and a test send
(the admin waits for the receiver's answer).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence

from infra.redis_client import note_unsent
from store.columns import utcnow
from sync.directory.plans import Source
from worker import broker as brokers
from worker import channels
from worker.calendar import jobs as calendar_jobs
from worker.calendar import reevaluate
from worker.directory import jobs as directory_jobs
from worker.directory import plans as directory_plans
from worker.peers import hooks
from worker.queue import ActorName
from worker.runtime import Runtime
from worker.webhooks import enqueue
from worker.webhooks.sender import Outcome, build_body, event_payload, post, sign_headers

_logger = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"


class QueuedJobs:
    """`api.jobs.Jobs` on `worker_runtime`: its queue, store, key ring and webhook client."""

    def __init__(self, worker_runtime: Runtime) -> None:
        self.runtime = worker_runtime
        self.queue = worker_runtime.queue

    def ready(self) -> bool:
        """Whether the broker answers (always, in-process)."""
        return brokers.ping(self.queue.broker)

    def waiting(self) -> Mapping[str, int]:
        """Messages waiting in each queue of the broker, delayed ones under `name.DQ`."""
        return brokers.waiting(self.queue.broker)

    def deliver_backlog(self, delivery_ids: Sequence[int]) -> None:
        """`deliver_in_order` of the backlog (left to the sweep when the broker refuses)."""
        enqueue.backlog(self.runtime, list(delivery_ids))

    def read_directory(self, connection_id: int) -> Source:
        """What a plan of the connection reads, with the readers its sync uses (worker/directory/plans.py)."""
        return directory_plans.read(self.runtime, connection_id)

    def sync_directory(self, connection_id: int) -> None:
        """`sync_connection` (the poll queues a lost one again: `sync_requested_at`)."""
        directory_jobs.enqueue_sync(self.queue, connection_id)

    def renew_directory_channels(self, connection_id: int, recreate: bool) -> None:
        """`ensure_channels` (the scheduler's channel job opens and renews them anyway)."""
        directory_jobs.enqueue_channels(self.queue, connection_id, recreate)

    def close_channels(self, connection_id: int) -> None:
        """Close the connection's channels at the provider now (best effort), its calendars' with them."""
        channels.close_connection(self.runtime, connection_id)

    def follow_calendars(self, connection_id: int) -> None:
        """`follow_connection` with a retry (owed as a follow-up; recorded here when the broker refuses)."""
        calendar_jobs.calendars_changed(self.runtime, connection_id)

    def sync_calendars(self, connection_id: int, calendar_ids: Sequence[int]) -> None:
        """`sync_calendars`, a batch (or a few) of one connection's calendars."""
        calendar_jobs.enqueue_syncs(self.queue, connection_id, list(calendar_ids))

    def renew_calendar_channel(self, calendar_id: int, recreate: bool) -> None:
        """`ensure_calendar_channels`."""
        calendar_jobs.enqueue_channels(self.queue, calendar_id, recreate)

    def reevaluate_calendars(self, organisation_id: int, changed: Sequence[str]) -> None:
        """`reevaluate_organisation` for the calendar settings among `changed` (owed as follow-ups)."""
        reevaluate.settings_changed(self.queue, organisation_id, changed)

    def apply_peer_deliveries(self, connection_id: int) -> None:
        """`apply_envelopes`, unless one waits to start for the connection."""
        hooks.enqueue(self.queue, connection_id)

    def email_sign_in_link(self, link_id: int) -> None:
        """`send_sign_in_email`. A lost one is lost: the link lasts minutes, and asking again makes another."""
        try:
            self.queue.send(ActorName.SEND_SIGN_IN_EMAIL, link_id)
        except Exception:
            note_unsent(_logger, "could not enqueue the email of sign-in link %d", link_id)

    def send_test_event(self, url: str, payload_format: str, secrets: Sequence[str], endpoint_id: int) -> Outcome:
        """A `webhook.test` event, shaped and signed as deliveries are, POSTed once through the webhook
        client (the SSRF guard at connect time, no redirects); nothing is stored or retried."""
        now = utcnow()
        event_id = f"evt_test_{uuid.uuid4().hex}"
        body = build_body([event_payload(event_id, TEST_EVENT, now, {"endpoint_id": endpoint_id})], payload_format)
        return post(self.runtime.webhook_client, url, body, sign_headers(event_id, body, secrets, now))
