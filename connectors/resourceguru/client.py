"""HTTP to the Resource Guru API: the account prefix, bearer tokens, its rate limit, retries, readable errors.

Every path but accounts and `/v1/me` sits under the account's URL id (`/v1/{account}/resources`).
An application may make 200 requests a minute; each answer says how many are left this minute
(`X-RateLimit-Remaining`), and one beyond the budget gets 429 with `Retry-After` seconds. Requests
are paced from those headers: when the budget is down to `reserve`, the client waits for the next
minute rather than spend it to the last request, so other connections of the same application are
not starved and 429s stay rare. A 429 (the budget is shared by every connection) is waited out as it
says; 5xx and network errors are retried with backoff. A wait longer than `max_wait` is not slept:
the caller gets a ConnectorError carrying `retry_after`. What happened is kept as notes for the admin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from connectors.records import ConnectorError
from connectors.resourceguru.auth import DEFAULT_BASE_URL

TIMES = "\u00d7"
MINUTE = 60.0
Params = Sequence[tuple[str, str]]  # pairs, because list filters repeat a name (resource_ids=1&resource_ids=2)


class TokenSource(Protocol):
    """Hands out access tokens (TokenKeeper; a stub in tests)."""

    def token(self) -> str: ...

    def refresh(self, rejected: str) -> str: ...


class Notes:
    """Counts what happened across requests and turns it into short sentences for the admin."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.paced = 0
        self.paced_for = 0.0
        self.throttled = 0
        self.throttled_for = 0.0
        self.server_errors: dict[int, int] = {}
        self.transport_errors = 0
        self.refreshed = 0
        self.extra: list[str] = []

    def drain(self) -> tuple[str, ...]:
        """The notes gathered since the last drain."""
        out: list[str] = []
        if self.paced:
            out.append(f"paced {self.paced}{TIMES} to stay within Resource Guru's rate limit ({self.paced_for:g}s)")
        if self.throttled:
            out.append(f"throttled {self.throttled}{TIMES} by Resource Guru (waited {self.throttled_for:g}s)")
        for status, count in sorted(self.server_errors.items()):
            out.append(f"Resource Guru answered {status} {count}{TIMES}, retried")
        if self.transport_errors:
            out.append(f"network error talking to Resource Guru {self.transport_errors}{TIMES}, retried")
        if self.refreshed:
            out.append("access token refreshed after Resource Guru refused it")
        out.extend(self.extra)
        self._reset()
        return tuple(out)


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
        self._max_attempts = max_attempts
        self._max_wait = max_wait
        self._backoff = backoff
        self.budget = RateBudget(clock, reserve)
        self.notes = Notes()

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
        attempt = 0
        refreshed = False
        token = self._tokens.token()
        while True:
            attempt += 1
            if (pause := self.budget.wait()) > 0:
                self.notes.paced += 1
                self.notes.paced_for += pause
                self._sleep(pause)
                self.budget.waited()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            try:
                response = self._http.request(method, url, params=list(params), headers=headers)
            except httpx.TransportError as error:
                self.notes.transport_errors += 1
                self._retry_or_raise(attempt, self._backoff_delay(attempt), f"unreachable ({type(error).__name__})")
                continue
            self.budget.observe(response.headers)
            status = response.status_code
            if status < 400:
                return response
            if status == 401 and not refreshed:
                # Expired early or revoked: one refresh tells which (a revoked grant fails to refresh).
                refreshed = True
                self.notes.refreshed += 1
                token = self._tokens.refresh(token)
                attempt -= 1
                continue
            if status == 429 or status >= 500:
                wait = _retry_after(response)
                if status == 429:
                    self.notes.throttled += 1
                    self.budget.waited()
                else:
                    self.notes.server_errors[status] = self.notes.server_errors.get(status, 0) + 1
                delay = wait if wait is not None else self._backoff_delay(attempt)
                self._retry_or_raise(attempt, delay, "throttled" if status == 429 else f"answered {status}")
                if status == 429:
                    self.notes.throttled_for += delay
                continue
            raise self._refusal(method, url, response)

    def _retry_or_raise(self, attempt: int, delay: float, what: str) -> None:
        if attempt >= self._max_attempts or delay > self._max_wait:
            raise ConnectorError(f"Resource Guru {what} {attempt}{TIMES}; try again in {delay:g}s", retry_after=delay)
        self._sleep(delay)

    def _backoff_delay(self, attempt: int) -> float:
        return float(min(self._backoff * 2 ** (attempt - 1), 30.0))

    def _refusal(self, method: str, url: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        where = f"{method} {httpx.URL(url).path}"
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


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None


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
