"""Where outgoing email goes: an SMTP server, or a folder when none is configured."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Protocol


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver `message` or raise; the calling actor retries."""


def new_message(*, subject: str, sender: str, to: str, tag: str) -> EmailMessage:
    """A plain-text email's headers: subject, sender, recipient, Date and a Message-ID tagged `tag`.

    Mail without Date and Message-ID is often treated as spam. The Message-ID takes the sender's
    domain, not make_msgid's default, which asks DNS for this host's name on every email.
    """
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(tag, domain=parseaddr(sender)[1].rpartition("@")[2] or "deskbridge")
    return message
