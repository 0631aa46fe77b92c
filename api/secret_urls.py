"""URLs that carry a secret, masked wherever a URL is logged: uvicorn's access log (a filter that
deskbridge.wiring installs where it configures logging) and our own lines about a request.

The secrets in paths: a calendar feed's URL (`/v1/feeds/<secret>.ics`), an invitation's accept link
(`/invitations/<token>`) and the console's sign-in link (`/console/sign-in/link/<token>`). In query
strings, any parameter whose name says token or secret (Microsoft Graph's `validationToken`).
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_IN_PATH = re.compile(r"^(/v1/feeds/)[^/?#]+(\.ics)|^(/invitations/)[^/?#]+|^(/console/sign-in/link/)[^/?#]+")
_IN_QUERY = re.compile(r"(?i)([?&][^=&#]*(?:token|secret)[^=&#]*=)[^&#]*")


def mask(target: str) -> str:
    """`target` (a path, with its query string or not) with the secrets it carries replaced by `***`."""
    path = _IN_PATH.sub(_masked_path, target, count=1)
    return _IN_QUERY.sub(lambda m: m.group(1) + MASK, path) if "?" in path else path


def _masked_path(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1)}{MASK}{match.group(2)}"
    return f"{match.group(3) or match.group(4)}{MASK}"


class MaskSecretUrls(logging.Filter):
    """Masks the request target in uvicorn's access lines (its args: client, method, target, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], mask(args[2]), args[3], args[4])
        return True


ACCESS_LOGGER = "uvicorn.access"


def install() -> None:
    """Mask secrets in uvicorn's access log. Kept by uvicorn's own logging set-up, which leaves filters be."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, MaskSecretUrls) for f in logger.filters):
        logger.addFilter(MaskSecretUrls())
