"""A worker whose key cannot open an endpoint's signing secret: the delivery shows why (a failed attempt
naming the cause, never the secret, counted in metrics), and goes out once the right key is back."""

from __future__ import annotations

import dataclasses

from prometheus_client import REGISTRY

from store.secret_box import SecretBox
from tests.worker.delivery.conftest import MakePipeline, Receivers, delivered, wait_until
from worker import runtime
from worker.scheduler import default_jobs


def undecryptable() -> float:
    return REGISTRY.get_sample_value("deskbridge_undecryptable_secrets_total", {"what": "webhook_secret"}) or 0.0


def test_a_secret_the_key_cannot_open_fails_the_attempt_with_the_reason(
    make_pipeline: MakePipeline, receivers: Receivers
) -> None:
    pipeline = make_pipeline("sqlite", "stub")
    org = pipeline.organisation()
    receiver = receivers.start()
    endpoint = pipeline.endpoint(org, receiver)  # its secret encrypted with the pipeline's key
    other_key = SecretBox.generate_key()
    made_with = runtime.current()
    runtime.configure(dataclasses.replace(made_with, secret_box=SecretBox([other_key]), retry_delays=(3600.0, 3600.0)))
    counted = undecryptable()
    pipeline.start_worker()

    pipeline.desk(org, "D1")

    wait_until(lambda: [d.attempts for d in pipeline.deliveries(endpoint)] == [1], "the failed attempt")
    [delivery] = pipeline.deliveries(endpoint)
    assert str(delivery.status) == "pending"  # on its retry schedule, not exhausted by a key problem
    [attempt] = pipeline.attempts(delivery.id)
    assert attempt.status_code is None
    assert attempt.error is not None
    assert "signing secret cannot be decrypted" in attempt.error
    assert "DESKBRIDGE_SECRET_KEY" in attempt.error
    assert pipeline.secrets[endpoint] not in attempt.error
    assert receiver.snapshot() == []  # nothing unsigned or wrongly signed went out
    assert undecryptable() - counted >= 1

    # The right key back (after the new one, as a rotation keeps it): the retry goes out signed.
    runtime.configure(dataclasses.replace(made_with, secret_box=SecretBox([other_key, pipeline.secret_key])))
    pipeline.time_passes(delivery.id)
    jobs = {job.name: job.func for job in default_jobs(runtime.current())}
    jobs["webhooks.sweep"]()
    wait_until(delivered(pipeline, endpoint, 1), "the delivery once the key is back")
    [request] = receiver.snapshot()
    assert request.verified
