"""The Prometheus exposition behind the API's /metrics, and the gauges both the API (at each scrape)
and the worker's scheduler set: the outbox's lag and the queues' depths. The worker's own metrics
(deliveries, actors, syncs) are in worker/metrics.py; all are in prometheus_client's default registry.

Several processes (uvicorn or dramatiq with more than one process, the API, workers and scheduler
in containers of their own): set PROMETHEUS_MULTIPROC_DIR to a folder shared by all of them (the
compose file's `metrics` volume) before they start; prometheus_client then writes every process's
values there and `exposition()` sums them. Each process's files are named by host name and pid
(`infra.metric_files`), since containers reuse the same small pids.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge, generate_latest, multiprocess

OUTBOX_LAG = Gauge(
    "deskbridge_outbox_lag_seconds",
    "Age of the oldest committed event not yet turned into deliveries (0 when none waits).",
    multiprocess_mode="mostrecent",
)
QUEUE_DEPTH = Gauge(
    "deskbridge_queue_depth",
    "Messages waiting in a Dramatiq queue (`name.DQ`: delayed, such as retries not yet due).",
    ["queue"],
    multiprocess_mode="mostrecent",
)


def record_queue_depths(waiting: Mapping[str, int]) -> None:
    """Set `QUEUE_DEPTH` for every queue named in `waiting` (messages by queue, as the broker counts them)."""
    for queue, count in waiting.items():
        QUEUE_DEPTH.labels(queue).set(count)


def exposition() -> tuple[bytes, str]:
    """The metrics as Prometheus text and its content type (of every process when in multi-process mode)."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
