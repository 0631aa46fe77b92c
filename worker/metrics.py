"""The worker's Prometheus metrics (deliveries, actors, syncs), in prometheus_client's default registry.

Actor durations and failures come from `ActorMetrics`, a small Dramatiq middleware, rather than
Dramatiq's own `Prometheus` middleware: that one keeps a registry of its own, switches the process
to multi-process mode only after boot (too late for metrics made at import) and always binds an
HTTP server on 0.0.0.0:9191 in a forked process. Ours records into the same registry as the
delivery metrics, so one scrape (`infra.metrics.exposition`, behind the API's /metrics) shows
everything; the gauges the API sets too (outbox lag, queue depth) are in infra/metrics.py, and
multi-process mode (PROMETHEUS_MULTIPROC_DIR) is described there.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "deskbridge_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: succeeded, retry (failed, will be tried again), "
    "exhausted (failed for the last time) or refused (SSRF guard).",
    ["outcome"],
)
DELIVERY_LATENCY = Histogram(
    "deskbridge_webhook_delivery_latency_seconds",
    "From the event's commit to the receiver's 2xx, retries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000, 86400, 172800),
)
DELIVERY_DURATION = Histogram(
    "deskbridge_webhook_request_duration_seconds",
    "HTTP round trip of one webhook request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
ACTOR_DURATION = Histogram(
    "deskbridge_actor_duration_seconds",
    "Time Dramatiq actors spent on a message.",
    ["queue", "actor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
ACTOR_FAILURES = Counter(
    "deskbridge_actor_failures_total", "Messages whose actor raised (each retry counts).", ["queue", "actor"]
)


UNDECRYPTABLE = Counter(
    "deskbridge_undecryptable_secrets_total",
    "Stored secrets no key of DESKBRIDGE_SECRET_KEY opened, by what they were (webhook_secret, "
    "connection_credentials): the key was changed or differs between processes.",
    ["what"],
)
SYNCS = Counter(
    "deskbridge_syncs_total",
    "Directory and calendar syncs by what was synced (directory, calendar), connection kind and "
    "outcome (succeeded, error, action_required).",
    ["sync", "kind", "outcome"],
)
SYNC_PEOPLE = Counter(
    "deskbridge_sync_people_total",
    "People directory syncs brought in or took out, by connection kind and action (invited, added, restored, removed).",
    ["kind", "action"],
)
EXTERNAL_EVENTS = Counter(
    "deskbridge_external_events_changed_total",
    "Calendar events calendar syncs stored as new or changed, or removed, by connection kind and change.",
    ["kind", "change"],
)
PEOPLE_ACTIONS = ("invited", "added", "restored", "removed")
EVENT_CHANGES = ("changed", "removed")


def record_sync(sync: str, kind: str, outcome: str, counts: dict[str, int] | None = None) -> None:
    """Count one sync and, from its tally's counts, the people it moved or the events it changed."""
    SYNCS.labels(sync, kind, outcome).inc()
    for name in PEOPLE_ACTIONS if sync == "directory" else EVENT_CHANGES:
        amount = (counts or {}).get(name, 0)
        if amount:
            (SYNC_PEOPLE if sync == "directory" else EXTERNAL_EVENTS).labels(kind, name).inc(amount)


class ActorMetrics(Middleware):
    """Records every processed message's duration and whether the actor raised."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        started = self._started.pop(message.message_id, None)
        labels = (message.queue_name, message.actor_name)
        if started is not None:
            ACTOR_DURATION.labels(*labels).observe(time.perf_counter() - started)
        if exception is not None:
            ACTOR_FAILURES.labels(*labels).inc()

    after_skip_message = after_process_message


def enable_worker_metrics(broker: dramatiq.Broker) -> None:
    """Add `ActorMetrics` to `broker` (once); call before workers start."""
    if not any(isinstance(middleware, ActorMetrics) for middleware in broker.middleware):
        broker.add_middleware(ActorMetrics())
