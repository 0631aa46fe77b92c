"""A send lost to a Redis outage is a debug line (the outage is logged once); any other loss a warning."""

from __future__ import annotations

import logging
import socket

import pytest
import redis

from infra.redis_client import fail_fast_client, note_unsent

log = logging.getLogger("tests.note_unsent")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_send_lost_to_an_outage_is_not_a_warning_each(caplog: pytest.LogCaptureFixture) -> None:
    client = fail_fast_client(
        f"redis://127.0.0.1:{_closed_port()}/0",
        name="test",
        meanwhile="nothing",
        connect_timeout=0.2,
        command_timeout=0.2,
    )
    caplog.set_level(logging.DEBUG, logger=log.name)
    for _ in range(3):
        try:
            client.ping()
        except redis.RedisError:
            note_unsent(log, "could not enqueue job %d", 7)
    lost = [record for record in caplog.records if record.name == log.name]
    assert [(record.levelno, record.getMessage(), record.exc_info) for record in lost] == [
        (logging.DEBUG, "could not enqueue job 7", None)
    ] * 3


def test_any_other_failure_is_a_warning_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    try:
        raise ValueError("a message that cannot be encoded")
    except ValueError:
        note_unsent(log, "could not enqueue job %d", 8)
    (record,) = [record for record in caplog.records if record.name == log.name]
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError
