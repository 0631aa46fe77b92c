"""HTTP to Microsoft Graph: bearer tokens, retries, throttling, and errors an admin can read.

Graph throttles with 429 (and sometimes 503/504) and a `Retry-After` in seconds, possibly
fractional; we wait exactly that. Other 5xx answers and transport errors are retried with
exponential backoff, as every connector does (connectors/http.py). What happened on the way is kept
as notes for the admin.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from connectors.http import Notes, Retrying
from connectors.microsoft.auth import DEFAULT_GRAPH_URL
from connectors.records import ConnectorError

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
        self._http = http or httpx.Client(verify=tls_context(verify) if verify else False, timeout=timeout)
        self.notes = Notes("Graph")
        self._retrying = Retrying(
            self.notes, sleep=sleep, max_attempts=max_attempts, max_wait=max_wait, backoff=backoff
        )

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
            sleep=self._retrying.sleep,
            max_attempts=self._retrying.max_attempts,
            max_wait=self._retrying.max_wait,
            backoff=self._retrying.backoff,
        )

    def url(self, path_or_url: str) -> str:
        """An absolute URL: links Graph hands out (nextLink, deltaLink) are used as they are, as long as
        they stay on Graph's own origin (the bearer token goes with them)."""
        if path_or_url.startswith(("https://", "http://")):
            link, base = httpx.URL(path_or_url), httpx.URL(self.base_url)
            if (link.scheme, link.host, link.port) != (base.scheme, base.host, base.port):
                raise ConnectorError(f"Graph handed out a link to another host ({link.host}); it was not followed")
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

        def attempt() -> httpx.Response:
            # The token is asked for at every attempt: a retry after a long wait may need a new one.
            sent = [*headers, ("Authorization", f"Bearer {self._auth.token()}"), ("Accept", "application/json")]
            return self._http.request(method, url, headers=sent, json=json)

        response = self._retrying.send(attempt, f"{method} {_path(url)}")
        if response.status_code < 400 or response.status_code in ok_statuses:
            return response
        raise self._refusal(method, url, response, permission)

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


@functools.cache
def tls_context(verify: str | bool) -> ssl.SSLContext:
    """The TLS context for a CA bundle path (True: the default one), made once a process: loading a
    bundle costs tens of milliseconds, and a context is safe to share between clients and threads.
    A bundle changed on disk is read at the next start."""
    # httpx wants an SSLContext for a CA bundle (a path is deprecated there).
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else httpx.create_ssl_context()


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
