"""Where outgoing email goes: an SMTP server, or a folder when none is configured."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver `message` or raise; the calling actor retries."""
