"""HTTP to the Resource Guru API: the account prefix, bearer tokens, its rate limit, retries, readable errors.

Every path but accounts and `/v1/me` sits under the account's URL id (`/v1/{account}/resources`).
An application may make 200 requests a minute; each answer says how many are left this minute
(`X-RateLimit-Remaining`), and one beyond the budget gets 429 with `Retry-After` seconds. Requests
are paced from those headers: when the budget is down to `reserve`, the client waits for the next
minute rather than spend it to the last request, so other connections of the same application are
not starved and 429s stay rare. A 429 (the budget is shared by every connection) is waited out as it
says; 5xx and network errors are retried with backoff, as every connector does (connectors/http.py).
What happened is kept as notes for the admin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from connectors.http import TIMES, Retrying
from connectors.http import Notes as BaseNotes
from connectors.records import ConnectorError
from connectors.resourceguru.auth import DEFAULT_BASE_URL

MINUTE = 60.0
Params = Sequence[tuple[str, str]]  # pairs, because list filters repeat a name (resource_ids=1&resource_ids=2)


class TokenSource(Protocol):
    """Hands out access tokens (TokenKeeper; a stub in tests)."""

    def token(self) -> str: ...

    def refresh(self, rejected: str) -> str: ...


@dataclass
class Notes(BaseNotes):
    """Every connector's notes, and the pacing and token refreshes of Resource Guru's."""

    paced: int = 0
    paced_for: float = 0.0
    refreshed: int = 0

    def drain(self) -> tuple[str, ...]:
        """The notes gathered since the last drain."""
        out: tuple[str, ...] = ()
        if self.paced:
            out += (f"paced {self.paced}{TIMES} to stay within Resource Guru's rate limit ({self.paced_for:g}s)",)
        out += super().drain()
        if self.refreshed:
            out += ("access token refreshed after Resource Guru refused it",)
        self.paced, self.paced_for, self.refreshed = 0, 0.0, 0
        return out


class RateBudget:
    """What is left of this minute's requests, as the last answer said, and when the minute is over.

    The API says how many requests remain but not when the minute ends, so the minute is taken to
    end a full minute after the first answer that showed a fresh budget (remaining went up, or the
    first answer seen): never earlier than the real end, which is what matters.
    """

    def __init__(self, clock: Callable[[], float], reserve: int) -> None:
        self._clock = clock
        self._reserve = reserve
        self.remaining: int | None = None
        self._ends = 0.0

    def observe(self, headers: httpx.Headers) -> None:
        """Note the budget an answer announced."""
        value = headers.get("X-RateLimit-Remaining", "")
        if not value.strip().isdigit():
            return
        remaining = int(value)
        if self.remaining is None or remaining > self.remaining:
            self._ends = self._clock() + MINUTE
        self.remaining = remaining

    def wait(self) -> float:
        """Seconds to wait before the next request (0 while the budget lasts)."""
        if self.remaining is None or self.remaining > self._reserve:
            return 0.0
        return max(self._ends - self._clock(), 0.0)

    def waited(self) -> None:
        """The minute is over: the next answer announces a new budget."""
        self.remaining = None


class ResourceGuruClient:
    """A small synchronous client (httpx) for one account; `sleep` and `clock` are injectable for tests."""

    def __init__(
        self,
        tokens: TokenSource,
        account: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_attempts: int = 5,
        max_wait: float = 120.0,
        backoff: float = 1.0,
        reserve: int = 2,
        timeout: float = 30.0,
    ) -> None:
        if not account.strip():
            raise ConnectorError("Resource Guru: the account URL id is empty", action_required=True)
        self.account = account.strip()
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._http = http or httpx.Client(timeout=timeout)
        self._sleep = sleep
        self.budget = RateBudget(clock, reserve)
        self.notes = Notes("Resource Guru")
        self._retrying = Retrying(
            self.notes, sleep=sleep, max_attempts=max_attempts, max_wait=max_wait, backoff=backoff
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def url(self, path: str) -> str:
        """The account-prefixed URL of `path` (e.g. "resources" → /v1/{account}/resources)."""
        return f"{self.base_url}/v1/{quote(self.account, safe='')}/{path.lstrip('/')}"

    def get(self, path: str, params: Params = ()) -> Any:
        """GET an account-prefixed path and return its JSON."""
        response = self.request("GET", self.url(path), params)
        try:
            return response.json()
        except ValueError:
            raise ConnectorError(f"Resource Guru answered GET /{path} with a body that is not JSON") from None

    def pages(self, path: str, params: Params = (), *, page_size: int = 100) -> Iterator[list[dict[str, Any]]]:
        """The items of a list endpoint, a page at a time, with the documented `limit`/`offset` paging.

        A short page is the last. A page longer than asked means the server ignored `limit` and sent
        everything, so paging on would only repeat it.
        """
        offset = 0
        while True:
            body = self.get(path, [*params, ("limit", str(page_size)), ("offset", str(offset))])
            if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
                raise ConnectorError(f"Resource Guru answered GET /{path} with something other than a list of objects")
            yield body
            if len(body) != page_size:
                return
            offset += page_size

    def request(self, method: str, url: str, params: Params = ()) -> httpx.Response:
        """Send one request, pacing, retrying and refreshing the token once; ConnectorError on a final refusal."""
        refreshed = False
        token = self._tokens.token()
        while True:
            response = self._retrying.send(partial(self._paced, method, url, params, token), f"{method} {_path(url)}")
            if response.status_code < 400:
                return response
            if response.status_code == 401 and not refreshed:
                # Expired early or revoked: one refresh tells which (a revoked grant fails to refresh).
                refreshed = True
                self.notes.refreshed += 1
                token = self._tokens.refresh(token)
                continue
            raise self._refusal(method, url, response)

    def _paced(self, method: str, url: str, params: Params, token: str) -> httpx.Response:
        """One attempt, after waiting for the next minute when this one's budget is spent."""
        if (pause := self.budget.wait()) > 0:
            self.notes.paced += 1
            self.notes.paced_for += pause
            self._sleep(pause)
            self.budget.waited()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        response = self._http.request(method, url, params=list(params), headers=headers)
        self.budget.observe(response.headers)
        if response.status_code == 429:
            self.budget.waited()  # the budget is spent whatever the headers said: Retry-After tells the rest
        return response

    def _refusal(self, method: str, url: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        where = f"{method} {_path(url)}"
        detail = _errors_of(response)
        if status == 401:
            return ConnectorError(
                f"Resource Guru refused the connection's token on {where} even after a refresh (401{detail}); "
                "an admin must connect Resource Guru again",
                action_required=True,
            )
        if status == 403:
            return ConnectorError(
                f"Resource Guru refused {where} (403{detail}); the connected user needs access to resources, "
                "bookings and time off (on accounts that require SSO only the account owner can use the API)",
                action_required=True,
            )
        if status == 404 and method == "GET":
            return ConnectorError(
                f"Resource Guru has no {where} (404{detail}); check the account URL id {self.account!r}",
                action_required=True,
            )
        return ConnectorError(f"Resource Guru refused {where}: {status}{detail}")


def _path(url: str) -> str:
    return httpx.URL(url).path


def _errors_of(response: httpx.Response) -> str:
    """The document's error body, `{"errors": [...]}` (or an object), as a short suffix."""
    try:
        body = response.json()
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        text = "; ".join(str(item) for item in errors)
    elif isinstance(errors, dict) and errors:
        text = "; ".join(f"{key}: {value}" for key, value in errors.items())
    else:
        return ""
    return f": {text[:300]}"
