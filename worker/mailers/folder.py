"""Email written to a folder and the log: the embedded default, so a newcomer sees invitations."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from store.columns import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderMailer:
    folder: Path

    def send(self, message: EmailMessage) -> None:
        """Write `message` as an .eml file and log where it went, with its text."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{stamp}-{message['To']}.eml".replace("/", "_")
        path.write_bytes(bytes(message))
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        logger.info("No SMTP server set: email to %s saved as %s\n%s", message["To"], path, text)
