"""HTTP to Microsoft Graph: bearer tokens, retries, throttling, and errors an admin can read.

Graph throttles with 429 (and sometimes 503/504) and a `Retry-After` in seconds, possibly
fractional; we wait exactly that. Other 5xx answers and transport errors are retried with
exponential backoff. Attempts are bounded, and a wait longer than `max_wait` is not slept through
at all: the caller gets a ConnectorError carrying `retry_after`, so the worker can reschedule
instead of holding a thread. What happened on the way is kept as notes for the admin.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from connectors.microsoft.auth import DEFAULT_GRAPH_URL
from connectors.records import ConnectorError

THROTTLE_STATUSES = frozenset({429, 503, 504})
TIMES = "\u00d7"  # the multiplication sign: "throttled 2\u00d7 by Graph" reads better than an x
RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


class TokenSource(Protocol):
    """Anything that hands out a bearer token for Graph (GraphAuth; a stub in tests)."""

    def token(self) -> str: ...


class GraphError(ConnectorError):
    """Graph answered with an error that retrying will not fix (status, Graph's error code)."""

    def __init__(self, message: str, *, status: int, code: str, action_required: bool = False) -> None:
        super().__init__(message, action_required=action_required)
        self.status = status
        self.code = code

    @property
    def resync(self) -> bool:
        """The delta or skip token is no longer valid: the listing must start again from scratch.

        Graph answers 410 Gone for this, and an expired identity delta token comes back as a 400
        with `syncStateNotFound`; both mean the same thing to us.
        """
        return self.status == 410 or self.code.lower() in RESYNC_CODES


class Notes:
    """Counts what happened across requests and turns it into short sentences for the admin."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.throttled = 0
        self.retry_after: list[float] = []
        self.server_errors: dict[int, int] = {}
        self.transport_errors = 0
        self.extra: list[str] = []

    def drain(self) -> tuple[str, ...]:
        """The notes gathered since the last drain."""
        out: list[str] = []
        if self.throttled:
            waits = ", ".join(_seconds(value) for value in sorted(set(self.retry_after)))
            out.append(f"throttled {self.throttled}{TIMES} by Graph" + (f" (Retry-After {waits})" if waits else ""))
        for status, count in sorted(self.server_errors.items()):
            out.append(f"Graph answered {status} {count}{TIMES}, retried")
        if self.transport_errors:
            out.append(f"network error talking to Graph {self.transport_errors}{TIMES}, retried")
        out.extend(self.extra)
        self._reset()
        return tuple(out)


def _seconds(value: float) -> str:
    return f"{value:g}s"


class GraphClient:
    """A small synchronous Graph client (httpx) with throttling and retries.

    `verify` is a CA bundle path or True; `http` replaces the httpx client (its own verify then
    applies); `sleep` is injectable so tests do not wait.
    """

    def __init__(
        self,
        auth: TokenSource,
        *,
        base_url: str = DEFAULT_GRAPH_URL,
        verify: str | bool = True,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        max_wait: float = 120.0,
        backoff: float = 1.0,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        # httpx wants an SSLContext for a CA bundle (a path is deprecated there).
        tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        self._http = http or httpx.Client(verify=tls, timeout=timeout)
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._max_wait = max_wait
        self._backoff = backoff
        self.notes = Notes()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def sharing(self) -> GraphClient:
        """A client with its own notes that shares this one's sign-in and keep-alive connections.

        For reading many mailboxes of one tenant at once (the threads of one calendar batch): one
        token, one TLS handshake per pooled connection, while each reader's notes stay its own.
        httpx's client and msal's token cache are both safe to share between threads.
        """
        return GraphClient(
            self._auth,
            base_url=self.base_url,
            http=self._http,
            sleep=self._sleep,
            max_attempts=self._max_attempts,
            max_wait=self._max_wait,
            backoff=self._backoff,
        )

    def url(self, path_or_url: str) -> str:
        """An absolute URL: links Graph hands out (nextLink, deltaLink) are used as they are."""
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def get_json(self, path_or_url: str, *, permission: str, headers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """GET a JSON object; `permission` names the Graph permission the call needs (for 401/403 messages).

        `headers` are sent as well (e.g. `Prefer`).
        """
        response = self.request("GET", path_or_url, permission=permission, headers=headers)
        try:
            body = response.json()
        except ValueError:
            raise ConnectorError(f"Graph answered {path_or_url} with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise ConnectorError(f"Graph answered {path_or_url} with JSON that is not an object")
        return body

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        permission: str,
        json: Mapping[str, Any] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
        headers: Sequence[tuple[str, str]] = (),
    ) -> httpx.Response:
        """Send one request, retrying throttling, 5xx and network errors; raise GraphError on a final refusal.

        Statuses in `ok_statuses` are returned instead of raised (e.g. 404 on a DELETE). `headers`
        are sent besides the bearer token, as (name, value) pairs so a name may repeat (Graph reads
        each `Prefer` line); a retry sends the same ones.
        """
        url = self.url(path_or_url)
        attempt = 0
        while True:
            attempt += 1
            sent = [*headers, ("Authorization", f"Bearer {self._auth.token()}"), ("Accept", "application/json")]
            try:
                response = self._http.request(method, url, headers=sent, json=json)
            except httpx.TransportError as error:
                self.notes.transport_errors += 1
                if attempt >= self._max_attempts:
                    raise ConnectorError(f"Graph unreachable after {attempt} attempts: {error!r}") from None
                self._sleep(self._backoff_delay(attempt))
                continue
            status = response.status_code
            if status < 400 or status in ok_statuses:
                return response
            if status in THROTTLE_STATUSES or status >= 500:
                wait = _retry_after(response) if status in THROTTLE_STATUSES else None
                if status == 429:
                    self.notes.throttled += 1
                    if wait is not None:
                        self.notes.retry_after.append(wait)
                else:
                    self.notes.server_errors[status] = self.notes.server_errors.get(status, 0) + 1
                delay = wait if wait is not None else self._backoff_delay(attempt)
                if attempt >= self._max_attempts or delay > self._max_wait:
                    what = "throttled" if status == 429 else f"answered {status}"
                    raise ConnectorError(
                        f"Graph {what} {attempt}{TIMES} on {method} {_path(url)}; try again in {_seconds(delay)}",
                        retry_after=delay,
                    )
                self._sleep(delay)
                continue
            raise self._refusal(method, url, response, permission)

    def _backoff_delay(self, attempt: int) -> float:
        return float(min(self._backoff * 2 ** (attempt - 1), 30.0))

    def _refusal(self, method: str, url: str, response: httpx.Response, permission: str) -> GraphError:
        status = response.status_code
        code, message = _error_of(response)
        where = f"{method} {_path(url)}"
        if status in (401, 403):
            return GraphError(
                f"Graph refused {where} ({status} {code}: {message}); the application needs the "
                f"application permission {permission} with admin consent",
                status=status,
                code=code,
                action_required=True,
            )
        return GraphError(f"Graph refused {where}: {status} {code}: {message}", status=status, code=code)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: Graph sends seconds; fall back to backoff rather than parse dates
    return max(seconds, 0.0)


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """Graph's error code and message from its `{"error": {"code", "message"}}` body, when there is one."""
    try:
        body = response.json()
    except ValueError:
        return "", response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code", "")), str(error.get("message", ""))
    return "", response.reason_phrase


def _path(url: str) -> str:
    # Links carry skip and delta tokens: long, opaque and useless in a message.
    return httpx.URL(url).path
