"""Follow-ups whose change is its own durable record (no `follow_ups` row): an invitation's email and a
directory sync asked for. The broker is unreachable while the change commits (`broker_down`: Dramatiq's
real RedisBroker on a port where nothing listens), then comes back, and the scheduler's job queues the
lost work: the email arrives once, the sync is queued."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from dramatiq import Message
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Connection, ConnectionKind, FollowUp
from store.secret_box import SecretBox
from store.services import connections, follow_ups, members
from tests.conftest import BROKER, make_org
from tests.worker.calendar.conftest import broker_down
from tests.worker.conftest import Configure, SMTPServer, drain
from worker import follow_ups as follow_ups_sweep
from worker import maintenance, runtime, scheduler
from worker.directory import jobs
from worker.mailers.folder import FolderMailer


def test_an_invitation_committed_while_the_broker_is_down_is_emailed_once_by_the_sweep(
    factory: sessionmaker[Session], smtp: SMTPServer, use_mailer: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # a send lost to an outage is a debug line
    use_mailer(smtp.mailer())
    org = make_org(factory)
    with broker_down(), transaction(factory) as session:
        members.invite(session, org.organisation.id, "newcomer@acme.example")  # its email job is lost
    assert "could not enqueue the work" in caplog.text
    drain(BROKER, "email")
    assert smtp.mailbox.deliveries == []

    assert maintenance.resend_unsent_invitations(runtime.current()) == 0  # the queue's grace first
    later = utcnow() + maintenance.UNSENT_AFTER + timedelta(seconds=1)
    assert maintenance.resend_unsent_invitations(runtime.current(), now=later) == 1
    drain(BROKER, "email")

    [delivery] = smtp.mailbox.deliveries
    assert delivery.rcpt_tos == ["newcomer@acme.example"]
    assert maintenance.resend_unsent_invitations(runtime.current(), now=later + timedelta(hours=1)) == 0


def test_a_directory_sync_asked_for_while_the_broker_is_down_is_queued_by_the_poll(
    factory: sessionmaker[Session], use_mailer: Configure, tmp_path: Path
) -> None:
    use_mailer(FolderMailer(tmp_path))
    org = make_org(factory)
    box = SecretBox([SecretBox.generate_key()])
    with transaction(factory) as session:
        connection, _ = connections.create(
            session,
            box,
            org.organisation.id,
            ConnectionKind.MICROSOFT,
            "Entra",
            settings={"tenant_id": "t", "client_id": "c"},
            credentials={"client_secret": "s"},
        )
        connection.last_synced_at = utcnow()  # synced just now: not due at the interval
        connection_id = connection.id
    BROKER.flush_all()
    asked_at = utcnow() - timedelta(minutes=6)
    with broker_down():
        with transaction(factory) as session:
            assert jobs.request_sync(session, connection_id) is True
            session.get_one(Connection, connection_id).sync_requested_at = asked_at  # asked a while ago
        jobs.enqueue_sync(runtime.current().queue, connection_id)  # lost
    assert BROKER.queues["directory"].qsize() == 0

    assert jobs.poll(runtime.current()) == 1

    [message] = [Message.decode(raw) for raw in BROKER.queues["directory"].queue]
    assert (message.actor_name, message.args) == ("sync_connection", (connection_id,))


def test_the_scheduler_sweeps_follow_ups_every_30_seconds(
    factory: sessionmaker[Session], use_mailer: Configure, tmp_path: Path
) -> None:
    use_mailer(FolderMailer(tmp_path))
    [job] = [job for job in scheduler.default_jobs(runtime.current()) if job.name == "follow_ups.sweep"]
    assert job.seconds == 30
    assert job.func() == 0  # nothing owed


def test_a_kind_this_version_does_not_know_is_left_owed(
    factory: sessionmaker[Session], use_mailer: Configure, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A row a newer version recorded during a rolling upgrade: this sweep leaves it, and queues the rest."""
    use_mailer(FolderMailer(tmp_path))
    org = make_org(factory)
    with transaction(factory) as session:
        session.add(FollowUp(kind="from_the_future", target_id=1, organisation_id=org.organisation.id, due_at=utcnow()))
        follow_ups.record(session, follow_ups.CALENDAR_WRITE, 99, org.organisation.id, due_in=timedelta(0))
    BROKER.flush_all()

    assert follow_ups_sweep.sweep(runtime.current(), now=utcnow() + timedelta(seconds=1)) == 1

    assert "no job for follow-up kind from_the_future" in caplog.text
    with factory() as session:
        assert [(item.kind, item.attempts) for item in follow_ups.pending(session)] == [
            ("calendar_write", 1),
            ("from_the_future", 1),
        ]
