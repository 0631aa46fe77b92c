"""Worker metrics: actor durations and failures recorded by real Dramatiq workers, queue depth on both brokers,
and processes sharing a multiprocess folder."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from infra.metrics import OUTBOX_LAG, exposition, record_queue_depths
from tests.conftest import REDIS_URL
from worker import broker as brokers
from worker import metrics

ROOT = Path(__file__).resolve().parents[3]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.emit_after("process_boot")
    yield broker
    broker.flush_all()
    broker.close()


def test_actor_durations_and_failures_are_recorded(stub_broker: StubBroker) -> None:
    metrics.enable_worker_metrics(stub_broker)
    metrics.enable_worker_metrics(stub_broker)  # once is enough
    assert sum(isinstance(m, metrics.ActorMetrics) for m in stub_broker.middleware) == 1

    @dramatiq.actor(broker=stub_broker, queue_name="metrics_test", actor_name="metrics_test_job", max_retries=0)
    def job(fail: bool) -> None:
        if fail:
            raise RuntimeError("boom")

    labels = {"queue": "metrics_test", "actor": "metrics_test_job"}
    runs_before = sample("deskbridge_actor_duration_seconds_count", **labels)
    failures_before = sample("deskbridge_actor_failures_total", **labels)
    for fail in (False, False, True):
        job.send(fail)
    worker = dramatiq.Worker(stub_broker, worker_timeout=100)
    worker.start()
    try:
        stub_broker.join("metrics_test", timeout=30_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()

    assert sample("deskbridge_actor_duration_seconds_count", **labels) - runs_before == 3
    assert sample("deskbridge_actor_failures_total", **labels) - failures_before == 1


def test_queue_depth_on_the_stub_broker(stub_broker: StubBroker) -> None:
    @dramatiq.actor(broker=stub_broker, queue_name="depth_stub")
    def job() -> None: ...

    for _ in range(3):
        job.send()
    job.send_with_options(delay=600_000)

    record_queue_depths(brokers.waiting(stub_broker))

    assert sample("deskbridge_queue_depth", queue="depth_stub") == 3
    assert sample("deskbridge_queue_depth", queue="depth_stub.DQ") == 1


def test_queue_depth_on_the_redis_broker(redis_client: redis.Redis) -> None:
    broker = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]

    @dramatiq.actor(broker=broker, queue_name="depth_redis")
    def job() -> None: ...

    try:
        for _ in range(4):
            job.send()
        job.send_with_options(delay=600_000)
        job.send_with_options(delay=600_000)

        record_queue_depths(brokers.waiting(broker))

        assert sample("deskbridge_queue_depth", queue="depth_redis") == 4
        assert sample("deskbridge_queue_depth", queue="depth_redis.DQ") == 2
    finally:
        broker.flush_all()
        broker.close()


def test_the_exposition_shows_the_delivery_metrics() -> None:
    metrics.DELIVERIES.labels("succeeded").inc()
    OUTBOX_LAG.set(1.5)
    text, content_type = exposition()
    assert content_type.startswith("text/plain")
    assert b'deskbridge_webhook_deliveries_total{outcome="succeeded"}' in text
    assert b"deskbridge_outbox_lag_seconds 1.5" in text
    assert b"deskbridge_webhook_delivery_latency_seconds_bucket" in text


def test_processes_sharing_a_metrics_folder_are_summed_and_named_by_host_and_pid(tmp_path: Path) -> None:
    """As the compose file's `metrics` volume: each process writes its own files (by host name and pid,
    since containers reuse pids), and one exposition sums them."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    count = "from worker import metrics; metrics.DELIVERIES.labels('succeeded').inc(3); import api.metrics"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    show = "from infra.metrics import exposition; print(exposition()[0].decode())"
    shown = subprocess.run([sys.executable, "-c", show], env=env, check=True, capture_output=True, text=True).stdout

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(shown)
        for sample in family.samples
    }
    assert samples[("deskbridge_webhook_deliveries_total", (("outcome", "succeeded"),))] == 6
    host = socket.gethostname().replace("_", "-")
    files = [path.name for path in tmp_path.glob("*.db")]
    assert files
    assert all(re.fullmatch(rf"[a-z_]+_{re.escape(host)}-\d+\.db", name) for name in files), files
