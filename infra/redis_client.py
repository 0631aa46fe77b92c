"""Redis clients that fail fast through an outage, for the API's request path and the broker.

redis-py on its own retries a failed command three times with backoff (seconds each), and a
connection to a hung Redis waits out the socket timeout: a Redis outage would make every request
that touches Redis slow, one after the other. A `FailFastPool` notices that connecting failed and
then refuses at once, for RETRY_SECONDS, every command asked of it; after that one command tries
Redis again (the circuit breaker pattern). An outage is logged once when it starts and once when it
ends, and shown in `deskbridge_redis_outages_total` and `deskbridge_redis_unreachable`, labelled
with the client's name ("rate limits", "broker").
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

import redis
import redis.asyncio
from prometheus_client import Counter, Gauge
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0

OUTAGES = Counter(
    "deskbridge_redis_outages_total",
    "Times a Redis client of this process found Redis unreachable (an outage starts), by client.",
    ["client"],
)
UNREACHABLE = Gauge(
    "deskbridge_redis_unreachable",
    "1 while a Redis client of this process finds Redis unreachable and fails fast, else 0; by client.",
    ["client"],
    multiprocess_mode="max",
)


class Circuit:
    """The outage state of one named client: open (refusing) for `retry_seconds` after connecting failed."""

    def __init__(self, name: str, meanwhile: str, retry_seconds: float = RETRY_SECONDS) -> None:
        self.name = name
        self.meanwhile = meanwhile
        self.retry_seconds = retry_seconds
        self.down_since: float | None = None  # monotonic time the outage began; None: Redis answers
        self._next_try = 0.0
        self._state = threading.Lock()
        UNREACHABLE.labels(name).set(0)

    def claim_retry(self) -> None:
        """During an outage, let one caller a `retry_seconds` through to try Redis; refuse the others at once."""
        if self.down_since is None:
            return
        with self._state:
            now = time.monotonic()
            if now < self._next_try:
                raise redis.ConnectionError(f"Redis ({self.name}) is unreachable; not tried again yet")
            self._next_try = now + self.retry_seconds

    def failed(self, error: redis.RedisError) -> None:
        """Connecting failed: the outage starts (logged once) or goes on."""
        with self._state:
            self._next_try = time.monotonic() + self.retry_seconds
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        OUTAGES.labels(self.name).inc()
        UNREACHABLE.labels(self.name).set(1)
        logger.warning(
            "%s: Redis is unreachable (%s); %s, trying Redis again every %g s",
            self.name,
            type(error).__name__,
            self.meanwhile,
            self.retry_seconds,
        )

    def connected(self) -> None:
        """Connecting worked: an outage, if one ran, is over (logged once)."""
        if self.down_since is not None:
            self._recovered()

    def _recovered(self) -> None:
        with self._state:
            if self.down_since is None:
                return
            lasted, self.down_since = time.monotonic() - self.down_since, None
        UNREACHABLE.labels(self.name).set(0)
        logger.warning("%s: Redis answers again after %.0f s", self.name, lasted)


class _OnCircuit:
    """A connection pool's part in its circuit: made with it, and asked when the outage began."""

    def __init__(
        self, *, name: str, meanwhile: str, retry_seconds: float = RETRY_SECONDS, **connection_kwargs: Any
    ) -> None:
        super().__init__(**connection_kwargs)
        self.circuit = Circuit(name, meanwhile, retry_seconds)

    @property
    def down_since(self) -> float | None:
        """When the outage began (monotonic), or None while Redis answers."""
        return self.circuit.down_since


class FailFastPool(_OnCircuit, redis.ConnectionPool):
    """A connection pool that, once connecting has failed, refuses at once for `retry_seconds`."""

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connected connection, or ConnectionError at once while an outage's retry interval runs."""
        self.circuit.claim_retry()
        try:
            connection = super().get_connection(*args, **kwargs)
        except redis.RedisError as error:
            self.circuit.failed(error)
            raise
        self.circuit.connected()
        return connection


class AsyncFailFastPool(_OnCircuit, redis.asyncio.BlockingConnectionPool):
    """`FailFastPool` for asyncio clients, on the same kind of circuit.

    Blocking: a coroutine that finds every connection in use waits for one (up to the pool's `timeout`),
    as a thread of the blocking client waits for its turn in the thread pool. redis-py's plain asyncio pool
    would raise MaxConnectionsError at once, which the circuit would take for an outage: a burst of
    requests on the event loop would turn counting over to the process for RETRY_SECONDS.
    """

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connected connection, or ConnectionError at once while an outage's retry interval runs."""
        self.circuit.claim_retry()
        try:
            connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.RedisError as error:
            self.circuit.failed(error)
            raise
        self.circuit.connected()
        return connection


def fail_fast_client(
    url: str, *, name: str, meanwhile: str, connect_timeout: float, command_timeout: float, retries: int = 0
) -> redis.Redis:
    """A client of the Redis at `url` on a `FailFastPool`: commands fail within the timeouts, and at
    once during an outage. `meanwhile` says in the outage's log line what the process does instead."""
    pool = FailFastPool.from_url(
        url,
        name=name,
        meanwhile=meanwhile,
        socket_connect_timeout=connect_timeout,
        socket_timeout=command_timeout,
        retry=Retry(NoBackoff(), retries),
    )
    return redis.Redis(connection_pool=pool)


def async_fail_fast_client(
    url: str,
    *,
    name: str,
    meanwhile: str,
    connect_timeout: float,
    command_timeout: float,
    max_connections: int = 50,
    wait_timeout: float = RETRY_SECONDS,
) -> redis.asyncio.Redis:
    """`fail_fast_client` for coroutines (redis.asyncio), with no retries, on at most `max_connections`
    connections: a coroutine waits for a free one up to `wait_timeout` (a wait that long means Redis does
    not answer: an outage)."""
    pool = AsyncFailFastPool.from_url(
        url,
        name=name,
        meanwhile=meanwhile,
        socket_connect_timeout=connect_timeout,
        socket_timeout=command_timeout,
        retry=AsyncRetry(NoBackoff(), 0),
        max_connections=max_connections,
        timeout=wait_timeout,
    )
    return redis.asyncio.Redis(connection_pool=pool)


def note_unsent(log: logging.Logger, message: str, *args: object) -> None:
    """Log, from inside an `except` block, a send to the queue that failed and that a sweep makes up.

    Through a Redis outage every commit's send fails: the outage itself is logged once by the pool,
    so each lost send is only a debug line. Any other failure is a warning with its traceback.
    """
    if isinstance(sys.exc_info()[1], redis.ConnectionError | redis.TimeoutError):
        log.debug(message, *args)
    else:
        log.warning(message, *args, exc_info=True)
