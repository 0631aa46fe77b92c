"""HTTP to When I Work: the developer-key login, the `W-Token` on every request, retries and notes.

The document's flow: `POST /2/login` with the developer key in `W-Key` and the user's email and
password in the body answers `{"users": [{…, "token": …}], "accounts": […]}`; from then on every
request carries `W-Token` (the header: the document also allows a cookie or the query string, and
a token in a URL ends up in logs). It describes no expiry or refresh; the only answer that fits a
token that stopped working is 401 ("Your API key is wrong"), so a 401 on a request made with a
token logs in again once and sends the request again. A 401 on the login itself, or a second 401
with a fresh token, is for an admin to fix (ConnectorError with `action_required`).

Throttling is a bare 429 in the document (no limits, no headers); we back off exponentially, and
wait a `Retry-After` instead when one is sent anyway. 500 and 503 say "try again later", so every
5xx and network error is retried the same way (connectors/http.py). Messages never carry the
password or the developer key, even when the server echoes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

from connectors.http import TIMES, Retrying
from connectors.http import Notes as BaseNotes
from connectors.records import ConnectorError

DEFAULT_BASE_URL = "https://api.wheniwork.com/2"


@dataclass
class Notes(BaseNotes):
    """Every connector's notes, and how often the token had to be renewed."""

    logins: int = 0  # logins after the first: each one means the token had stopped working

    def drain(self) -> tuple[str, ...]:
        """The notes gathered since the last drain."""
        out = super().drain()
        if self.logins:
            out += (f"the When I Work token expired; logged in again {self.logins}{TIMES}",)
            self.logins = 0
        return out


class WhenIWorkClient:
    """A small synchronous When I Work client (httpx) that logs in, keeps its token and retries.

    `developer_key` is the `W-Key`, `username`/`password` the credentials of the When I Work user
    whose view the connector reads (a manager sees everyone's shifts). `http` replaces the httpx
    client; `sleep` is injectable so tests do not wait.
    """

    def __init__(
        self,
        developer_key: str,
        username: str,
        password: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        max_wait: float = 120.0,
        backoff: float = 1.0,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._key = developer_key
        self._password = password
        self._http = http or httpx.Client(timeout=timeout)
        self._token: str | None = None
        self.notes = Notes("When I Work")
        # Backing off up to a minute, since When I Work names no wait of its own.
        self._retrying = Retrying(
            self.notes, sleep=sleep, max_attempts=max_attempts, max_wait=max_wait, backoff=backoff, max_backoff=60.0
        )

    def __repr__(self) -> str:
        # The default repr would not show secrets (no dataclass), but say so explicitly for log readers.
        return f"WhenIWorkClient({self.base_url!r}, username={self.username!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET `path` (e.g. "shifts") as a JSON object, logged in; ConnectorError on a final refusal."""
        if self._token is None:
            self.login()
        response = self._send("GET", path, params=params, token=True)
        if response.status_code == 401:
            # The document has no expiry error but 401; a fresh token once tells expiry from refusal.
            self.login()
            self.notes.logins += 1
            response = self._send("GET", path, params=params, token=True)
        if response.status_code >= 400:
            raise self._refusal("GET", path, response)
        return _object(response, path)

    def login(self) -> None:
        """Log in with the developer key and the user's credentials and keep the token."""
        body = {"username": self.username, "password": self._password}
        response = self._send("POST", "login", json=body, token=False)
        if response.status_code in (400, 401, 403):
            raise ConnectorError(
                f"When I Work refused the login for {self.username} ({response.status_code}: "
                f"{self._scrub(_error_text(response))}); check the developer key and the user's email and password",
                action_required=True,
            )
        if response.status_code >= 400:
            raise self._refusal("POST", "login", response)
        users = _object(response, "login").get("users")
        first = users[0] if isinstance(users, list) and users else None
        token = first.get("token") if isinstance(first, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectorError("When I Work answered the login without a token in users[0].token")
        self._token = token

    def _send(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, json: Any = None, token: bool
    ) -> httpx.Response:
        """One request, retried on throttling, 5xx and network errors; other answers are returned."""
        # The key is for the login only: the document says a token needs no W-Key beside it.
        headers = {"Accept": "application/json"}
        if token:
            headers["W-Token"] = self._token or ""
        else:
            headers["W-Key"] = self._key
        url = f"{self.base_url}/{path.lstrip('/')}"
        send = partial(self._http.request, method, url, params=params, json=json, headers=headers)
        return self._retrying.send(send, f"{method} /{path}")

    def _refusal(self, method: str, path: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        where = f"{method} /{path}"
        text = self._scrub(_error_text(response))
        if status in (401, 403):
            return ConnectorError(
                f"When I Work refused {where} for {self.username} ({status}: {text}); the user needs to be "
                "a manager or supervisor who sees every location's schedule",
                action_required=True,
            )
        return ConnectorError(f"When I Work refused {where}: {status}: {text}")

    def _scrub(self, text: str) -> str:
        for secret in (self._password, self._key):
            if secret:
                text = text.replace(secret, "***")
        return text


def _object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ConnectorError(f"When I Work answered /{path} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise ConnectorError(f"When I Work answered /{path} with JSON that is not an object")
    return body


def _error_text(response: httpx.Response) -> str:
    """The error's words: the document gives no error body, so take `error`/`message` when there is one."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])[:200]
    return response.reason_phrase
