"""What every connector's HTTP client shares: retrying throttling, server errors and network errors,
and keeping notes of them for the admin.

A 429 or a 5xx is waited out: `Retry-After` (seconds) when the answer has one, else an exponential
backoff; a network error backs off the same way. Attempts are bounded, and a wait longer than
`max_wait` is not slept through: the caller gets a ConnectorError carrying `retry_after`, so the
worker reschedules instead of holding a thread. Other answers (2xx, 4xx) are the caller's to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from connectors.records import ConnectorError

TIMES = "\u00d7"  # the multiplication sign: "throttled 2\u00d7" reads better than an x


@dataclass
class Notes:
    """Counts what happened across requests and turns it into short sentences (drained onto pages)."""

    platform: str
    throttled: int = 0
    waited: float = 0.0  # seconds slept for throttling
    server_errors: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    extra: list[str] = field(default_factory=list)

    def drain(self) -> tuple[str, ...]:
        """The notes gathered since the last drain."""
        out: list[str] = []
        if self.throttled:
            waited = f" (waited {self.waited:g}s)" if self.waited else ""
            out.append(f"throttled {self.throttled}{TIMES} by {self.platform}{waited}")
        out.extend(
            f"{self.platform} answered {status} {count}{TIMES}, retried"
            for status, count in sorted(self.server_errors.items())
        )
        if self.transport_errors:
            out.append(f"network error talking to {self.platform} {self.transport_errors}{TIMES}, retried")
        out.extend(self.extra)
        self.throttled, self.waited, self.transport_errors = 0, 0.0, 0
        self.server_errors, self.extra = {}, []
        return tuple(out)


class Retrying:
    """Sends a request again until it is answered with neither throttling nor a server error.

    `sleep` is injectable so tests do not wait.
    """

    def __init__(
        self,
        notes: Notes,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        max_wait: float = 120.0,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.notes = notes
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.max_backoff = max_backoff

    def send(self, attempt: Callable[[], httpx.Response], where: str) -> httpx.Response:
        """`attempt()` until its answer is neither a 429 nor a 5xx; `where` ("GET /users") is for messages."""
        platform = self.notes.platform
        tries = 0
        while True:
            tries += 1
            try:
                response = attempt()
            except httpx.TransportError as error:
                self.notes.transport_errors += 1
                if tries >= self.max_attempts:
                    raise ConnectorError(
                        f"{platform} unreachable after {tries} attempts ({type(error).__name__})"
                    ) from None
                self.sleep(self.backoff_delay(tries))
                continue
            status = response.status_code
            if status != 429 and status < 500:
                return response
            wait = retry_after(response)
            delay = wait if wait is not None else self.backoff_delay(tries)
            if status == 429:
                self.notes.throttled += 1
            else:
                self.notes.server_errors[status] = self.notes.server_errors.get(status, 0) + 1
            if tries >= self.max_attempts or delay > self.max_wait:
                what = "throttled" if status == 429 else f"answered {status}"
                raise ConnectorError(
                    f"{platform} {what} {tries}{TIMES} on {where}; try again in {delay:g}s", retry_after=delay
                )
            if status == 429:
                self.notes.waited += delay
            self.sleep(delay)

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt + 1` when the server named none."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds, when the answer has one in seconds (an HTTP date falls back to backoff)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
