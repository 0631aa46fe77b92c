"""Email written to a folder and the log: the embedded default, so a newcomer sees invitations."""

from __future__ import annotations

import logging
import re
import uuid
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
        path = self.folder / _file_name(str(message["To"]))
        path.write_bytes(bytes(message))
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        logger.info("No SMTP server set: email to %s saved as %s\n%s", message["To"], path, text)


def _file_name(recipient: str) -> str:
    # Sortable by time, unique even within one microsecond, and safe whatever the address holds.
    safe = re.sub(r"[^\w.@+-]+", "_", recipient)[:100]
    return f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}-{safe}.eml"
