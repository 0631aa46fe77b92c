"""Invitation emails: from the invite's commit, through a real Dramatiq worker and a real SMTP server,
to the accept link working on the API."""

from __future__ import annotations

import dataclasses
import logging
import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Invitation, InvitationStatus, Member, MemberStatus
from store.services import members
from tests.conftest import BROKER, QUEUE, REDIS_URL, make_client, make_org
from tests.worker.conftest import (
    JOIN_TIMEOUT_MS,
    SENDER,
    Configure,
    Mailbox,
    SMTPServer,
    StartSMTP,
    drain,
    password_check,
)
from worker import actors, runtime
from worker.mailers.folder import FolderMailer
from worker.queue import ActorName

INVITEE = "Grace.Hopper@Example.com"


def invite(factory: sessionmaker[Session], email: str = INVITEE) -> tuple[int, int]:
    """Invite `email` to a fresh organisation; returns the organisation's and the invitation's ids."""
    acme = make_org(factory)
    with transaction(factory) as session:
        invitation = members.invite(session, acme.organisation.id, email, invited_by=acme.admin, source="cli")
        return acme.organisation.id, invitation.id


def invitation(factory: sessionmaker[Session], invitation_id: int) -> Invitation:
    with factory() as session:
        return session.get_one(Invitation, invitation_id)


def member_of(factory: sessionmaker[Session], invitation_id: int) -> Member:
    with factory() as session:
        return session.get_one(Member, session.get_one(Invitation, invitation_id).member_id)


def test_invitation_email_arrives_and_its_link_makes_the_member_active(
    factory: sessionmaker[Session], smtp: SMTPServer, use_mailer: Configure
) -> None:
    use_mailer(smtp.mailer())
    _, invitation_id = invite(factory)  # the commit enqueues the job (worker.after_commit)

    drain()

    [delivery] = smtp.mailbox.deliveries
    assert delivery.rcpt_tos == ["grace.hopper@example.com"]
    assert delivery.mail_from == "no-reply@deskbridge.test"
    assert delivery.message["To"] == "grace.hopper@example.com"
    assert delivery.message["From"] == SENDER
    assert delivery.message["Subject"] == "You're invited to Acme on deskbridge"
    assert delivery.message["Message-ID"].endswith("@deskbridge.test>")
    assert delivery.message["Date"]
    assert invitation(factory, invitation_id).sent_at is not None

    link = delivery.accept_link().removeprefix("http://testserver")
    client = make_client(factory)
    page = client.get(link)
    assert page.status_code == 200
    assert "Acme" in page.text
    assert member_of(factory, invitation_id).status is MemberStatus.INVITED  # opening the link changes nothing

    accepted = client.post(link, data={"display_name": "Grace Hopper"})

    assert accepted.status_code == 200
    assert "is now a member" in accepted.text
    joined = member_of(factory, invitation_id)
    assert (joined.status, joined.display_name) == (MemberStatus.ACTIVE, "Grace Hopper")
    assert invitation(factory, invitation_id).status is InvitationStatus.ACCEPTED
    assert client.post(link).status_code == 410  # the link works once


def test_the_actor_is_idempotent(factory: sessionmaker[Session], smtp: SMTPServer, use_mailer: Configure) -> None:
    use_mailer(smtp.mailer())
    _, invitation_id = invite(factory)
    drain()
    token_hash = invitation(factory, invitation_id).token_hash

    QUEUE.send(ActorName.SEND_INVITATION_EMAIL, invitation_id)  # a redelivery, as at-least-once allows
    drain()

    assert len(smtp.mailbox.deliveries) == 1
    assert invitation(factory, invitation_id).token_hash == token_hash  # the emailed link still works


def test_a_revoked_invitation_sends_nothing(
    factory: sessionmaker[Session], smtp: SMTPServer, use_mailer: Configure
) -> None:
    use_mailer(smtp.mailer())
    _, invitation_id = invite(factory)  # enqueued; no worker runs yet
    with transaction(factory) as session:
        members.revoke_invitation(session, session.get_one(Invitation, invitation_id))

    drain()

    assert smtp.mailbox.deliveries == []
    assert invitation(factory, invitation_id).token_hash is None


def test_an_unknown_invitation_sends_nothing(smtp: SMTPServer, use_mailer: Configure) -> None:
    use_mailer(smtp.mailer())
    QUEUE.send(ActorName.SEND_INVITATION_EMAIL, 999_999)

    drain()

    assert smtp.mailbox.deliveries == []


def test_a_refusing_server_makes_the_actor_raise(
    quiet_factory: sessionmaker[Session], start_smtp: StartSMTP, use_mailer: Configure
) -> None:
    server = start_smtp(Mailbox(refuse=1))
    use_mailer(server.mailer())
    _, invitation_id = invite(quiet_factory)

    with pytest.raises(smtplib.SMTPDataError) as refused:
        actors.send_invitation_email(invitation_id)

    assert refused.value.smtp_code == 550
    assert invitation(quiet_factory, invitation_id).sent_at is None


def test_dramatiq_retries_a_refused_email_until_it_is_delivered(
    quiet_factory: sessionmaker[Session], start_smtp: StartSMTP, use_mailer: Configure
) -> None:
    server = start_smtp(Mailbox(refuse=2))
    use_mailer(server.mailer())
    _, invitation_id = invite(quiet_factory)

    # The actor's own backoff is minutes long; a millisecond keeps the test short, the retry is the same.
    QUEUE.actor(ActorName.SEND_INVITATION_EMAIL).send_with_options(args=(invitation_id,), min_backoff=1, max_backoff=10)
    drain()

    assert server.mailbox.refused == 2
    [delivery] = server.mailbox.deliveries
    link = delivery.accept_link().removeprefix("http://testserver")
    assert make_client(quiet_factory).post(link).status_code == 200  # the link of the email that arrived
    assert member_of(quiet_factory, invitation_id).status is MemberStatus.ACTIVE


def test_retries_end_in_a_dead_letter_when_the_server_keeps_refusing(
    quiet_factory: sessionmaker[Session], start_smtp: StartSMTP, use_mailer: Configure
) -> None:
    server = start_smtp(Mailbox(refuse=1_000))
    use_mailer(server.mailer())
    _, invitation_id = invite(quiet_factory)

    QUEUE.actor(ActorName.SEND_INVITATION_EMAIL).send_with_options(
        args=(invitation_id,), max_retries=2, min_backoff=1, max_backoff=10
    )
    with pytest.raises(smtplib.SMTPDataError):
        drain()

    assert server.mailbox.refused == 3  # the first try and two retries
    assert server.mailbox.deliveries == []
    assert invitation(quiet_factory, invitation_id).sent_at is None


def test_smtp_login(factory: sessionmaker[Session], start_smtp: StartSMTP, use_mailer: Configure) -> None:
    server = start_smtp(authenticator=password_check("deskbridge", "s3cret"), auth_require_tls=False)
    use_mailer(server.mailer("deskbridge", "s3cret"))
    invite(factory)

    drain()

    assert len(server.mailbox.deliveries) == 1


def test_smtp_login_refused_raises(start_smtp: StartSMTP) -> None:
    server = start_smtp(authenticator=password_check("deskbridge", "s3cret"), auth_require_tls=False)
    message = EmailMessage()
    message["To"], message["From"], message["Subject"] = "a@example.com", SENDER, "hello"

    with pytest.raises(smtplib.SMTPAuthenticationError):
        server.mailer("deskbridge", "wrong").send(message)

    assert server.mailbox.deliveries == []


def test_without_smtp_the_email_goes_to_a_folder_and_the_log(
    factory: sessionmaker[Session], use_mailer: Configure, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker.mailers.folder")
    use_mailer(FolderMailer(tmp_path / "mail"))
    _, invitation_id = invite(factory)

    drain()

    [saved] = (tmp_path / "mail").glob("*.eml")
    message = message_from_bytes(saved.read_bytes(), policy=policy.default)
    assert message["To"] == "grace.hopper@example.com"
    body = message.get_body(("plain",))
    assert body is not None
    link = next(word for word in body.get_content().split() if "/invitations/" in word)
    assert [record for record in caplog.records if str(saved) in record.getMessage() and link in record.getMessage()]
    assert make_client(factory).post(link.removeprefix("http://testserver")).status_code == 200
    assert member_of(factory, invitation_id).status is MemberStatus.ACTIVE


def test_folder_mailer_keeps_every_message_apart(tmp_path: Path) -> None:
    mailer = FolderMailer(tmp_path / "mail")
    for subject in ("one", "two"):
        message = EmailMessage()
        message["To"], message["Subject"] = "Grace <grace@example.com>", subject
        message.set_content(subject)
        mailer.send(message)

    saved = sorted((tmp_path / "mail").glob("*.eml"))

    assert len(saved) == 2
    assert all("/" not in path.name and "<" not in path.name for path in saved)
    subjects = {message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"] for path in saved}
    assert subjects == {"one", "two"}


def test_invitation_email_through_the_real_redis_broker(
    redis_client: redis.Redis, factory: sessionmaker[Session], smtp: SMTPServer, use_mailer: Configure
) -> None:
    """Production's path: the relay enqueues on Redis, a Dramatiq worker on Redis sends the email."""
    use_mailer(smtp.mailer())
    redis_broker = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]
    on_redis = actors.bind(redis_broker)  # the actors bound to Redis for this test, as the wiring binds them
    runtime.configure(dataclasses.replace(runtime.current(), queue=on_redis))
    actor = on_redis.actor(ActorName.SEND_INVITATION_EMAIL)
    worker = dramatiq.Worker(redis_broker, worker_timeout=100)
    worker.start()
    try:
        _, invitation_id = invite(factory)
        # The email job done (not worker.join(): the commit's relay job stays until the worker stops).
        redis_broker.join(actor.queue_name, timeout=JOIN_TIMEOUT_MS)
    finally:
        worker.stop()
        redis_broker.close()

    assert BROKER.queues[actor.queue_name].qsize() == 0  # nothing went the in-process way
    [delivery] = smtp.mailbox.deliveries
    assert delivery.rcpt_tos == ["grace.hopper@example.com"]
    assert make_client(factory).post(delivery.accept_link().removeprefix("http://testserver")).status_code == 200
    assert member_of(factory, invitation_id).status is MemberStatus.ACTIVE


def test_many_invitations_in_one_commit_go_out_in_batches(
    factory: sessionmaker[Session], smtp: SMTPServer, use_mailer: Configure
) -> None:
    use_mailer(smtp.mailer())
    acme = make_org(factory)
    smtp.mailbox.refuse = 1  # the first message is refused: that invitation is retried on its own
    with transaction(factory) as session:
        ids = [members.invite(session, acme.organisation.id, f"person{number}@example.com").id for number in range(150)]
    queued = [Message.decode(raw).actor_name for raw in BROKER.queues["email"].queue]
    assert queued == ["send_invitation_emails", "send_invitation_emails"]  # 100 + 50, not 150 messages

    drain()

    sent = sorted(address for delivery in smtp.mailbox.deliveries for address in delivery.rcpt_tos)
    assert sent == sorted(f"person{number}@example.com" for number in range(150))
    assert all(invitation(factory, invitation_id).sent_at is not None for invitation_id in ids)
