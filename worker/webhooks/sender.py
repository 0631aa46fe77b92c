"""One webhook request: the body, its Standard Webhooks signature, the POST and what came of it.

Nothing here touches the store; the delivery actor decides what to send and records the `Outcome`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from math import floor
from typing import Any, TypedDict

import httpcore
import httpx
from standardwebhooks.webhooks import Webhook

from worker.webhooks.schedule import retry_after_seconds
from worker.webhooks.ssrf import UnsafeURL, resolve_safe, warn_if_private_allowed

PAYLOAD_FORMATS = ("event", "array")
EXCERPT_BYTES = 1024
TIMEOUT_SECONDS = 15.0
# Deliveries to one endpoint are capped by worker.webhooks.limits; this caps all of a process's sockets.
POOL_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30.0)


def _user_agent() -> str:
    try:
        return f"deskbridge-webhooks/{version('deskbridge')}"
    except PackageNotFoundError:
        return "deskbridge-webhooks/0"


USER_AGENT = _user_agent()


class EventPayload(TypedDict):
    """One event as receivers see it."""

    id: str
    type: str
    timestamp: str
    data: dict[str, Any]


def event_payload(event_id: str, event_type: str, timestamp: datetime, data: dict[str, Any]) -> EventPayload:
    """The payload of one event, its (aware) timestamp as ISO 8601 in UTC."""
    if timestamp.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    when = timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return EventPayload(id=event_id, type=event_type, timestamp=when, data=data)


def build_body(events: Sequence[EventPayload], payload_format: str) -> bytes:
    """The request body: format "event" is one JSON object (exactly one event), "array" a JSON array."""
    if payload_format == "event":
        if len(events) != 1:
            raise ValueError(f'the "event" format sends exactly one event, not {len(events)}')
        document: object = events[0]
    elif payload_format == "array":
        document = list(events)
    else:
        raise ValueError(f"unknown payload format {payload_format!r}; expected one of {PAYLOAD_FORMATS}")
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sign_headers(event_id: str, body: bytes, secrets: Sequence[str], at: datetime) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed with every secret (old and new during a rotation).

    `event_id` is the `webhook-id`: the same on every retry, so receivers can drop duplicates.
    """
    return sign_headers_with(event_id, body, [Webhook(secret) for secret in secrets], at)


def sign_headers_with(event_id: str, body: bytes, signers: Sequence[Webhook], at: datetime) -> dict[str, str]:
    """`sign_headers` with the secrets made into `Webhook` signers already (a worker keeps them)."""
    if not signers:
        raise ValueError("at least one signing secret is needed")
    if at.tzinfo is None:
        raise ValueError("the signing time must be timezone-aware")
    at = at.astimezone(UTC)  # Webhook.sign replaces tzinfo with UTC: give it UTC wall time
    data = body.decode()
    signatures = " ".join(signer.sign(event_id, at, data) for signer in signers)
    return {"webhook-id": event_id, "webhook-timestamp": str(floor(at.timestamp())), "webhook-signature": signatures}


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to. Exactly one of `status_code` and `error` tells the story, except for a 3xx."""

    status_code: int | None
    duration_ms: int
    response_excerpt: str = ""
    error: str | None = None
    retry_after: float | None = None  # seconds asked for by Retry-After on a 429 or 503
    gone: bool = False  # 410: the receiver wants no more deliveries
    refused: bool = False  # the SSRF guard refused the address at connect time: nothing was sent

    @property
    def success(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


def post(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = TIMEOUT_SECONDS
) -> Outcome:
    """POST `body` to `url` once, never following redirects and never raising for network trouble.

    `client` is one from `make_client`: the request goes straight to its SSRF-checked transport (the
    client's cookies, redirects, auth and per-request logging are nothing a webhook wants, and cost
    as much as the request). Timeouts, connection errors and SSRF refusals come back as an `Outcome`
    with `error` set.
    """
    if not isinstance(client, WebhookClient):
        raise TypeError("post needs a client made by worker.webhooks.sender.make_client")
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        request = httpx.Request(
            "POST",
            url,
            content=body,
            headers={**headers, "user-agent": USER_AGENT, "content-type": "application/json"},
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        response = client.checked_transport.handle_request(request)
        try:
            excerpt = _read_excerpt(response.iter_bytes())
        finally:
            response.close()
    except UnsafeURL as error:
        return Outcome(None, elapsed(), error=f"refused: {error}", refused=True)
    except httpx.TimeoutException as error:
        return Outcome(None, elapsed(), error=f"timed out after {timeout:g} s ({type(error).__name__})")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Outcome(None, elapsed(), error=f"{type(error).__name__}: {error}")
    status = response.status_code
    retry_after = None
    if status in (429, 503):
        retry_after = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
    error_text = None
    if response.is_redirect:
        error_text = f"redirect to {response.headers.get('location', '?')} not followed"
    return Outcome(status, elapsed(), excerpt, error_text, retry_after, gone=status == 410)


def _read_excerpt(chunks: Iterable[bytes]) -> str:
    """The first KiB of the body: a receiver's huge or endless answer costs us no more than that."""
    kept = b""
    for chunk in chunks:
        kept += chunk
        if len(kept) >= EXCERPT_BYTES:
            break
    return kept[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def make_client(*, allow_private: bool) -> httpx.Client:
    """An HTTP client for webhooks: SSRF-checked at connect time, no redirects, no proxies from the environment.

    Share one per process (it is thread-safe and pools connections); close it on shutdown.
    """
    warn_if_private_allowed(allow_private)
    return WebhookClient(CheckedTransport(allow_private=allow_private))


class WebhookClient(httpx.Client):
    """An httpx client on a `CheckedTransport`, which `post` uses directly."""

    def __init__(self, transport: CheckedTransport) -> None:
        super().__init__(
            transport=transport,
            headers={"user-agent": USER_AGENT},
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
            trust_env=False,
        )
        self.checked_transport = transport


class CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses unsafe addresses, and connects only to the addresses it checked.

    TLS still verifies the certificate against the URL's host name: httpcore passes it as the SNI name.
    """

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve_safe(host, port, self.allow_private)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        last: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                last = error
        assert last is not None  # resolve_safe returns at least one address
        raise last


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport with `CheckedBackend` underneath (httpx offers no public way to pass a backend)."""

    def __init__(self, *, allow_private: bool, limits: httpx.Limits = POOL_LIMITS) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(allow_private=allow_private),
        )
