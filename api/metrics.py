"""`GET /metrics` (Prometheus text; a bearer token when DESKBRIDGE_METRICS_TOKEN is set) and the
API's own request metrics.

The exposition is the default registry's (infra.metrics): one scrape of the API shows deliveries,
actors, queues, syncs and the outbox as well as requests, of every process sharing
PROMETHEUS_MULTIPROC_DIR. Queue depth (asked of the queue through `Jobs.waiting`) and outbox lag are
read fresh at each scrape, since both are cheap to read from here and a gauge set only by the
scheduler would lag behind; so is each connection's time since its last
successful sync, made from the store at each scrape (a connection deleted is simply gone from it).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import context
from api.jobs import Jobs
from infra.metrics import OUTBOX_LAG, exposition, record_queue_depths
from store.columns import utcnow
from store.models import Connection
from store.services import outbox_relay

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "deskbridge_api_requests_total",
    "API requests by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "deskbridge_api_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Requests no route matched (404s for any path, or refused before routing) share one label, so that
# scanning random paths cannot grow the label set without bound.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Every metric of this process (of all processes in multi-process mode), in Prometheus text."""
    ctx = context(request)
    if ctx.metrics_token is not None and not _bearer_ok(request, ctx.metrics_token):
        return Response(
            "GET /metrics needs the bearer token DESKBRIDGE_METRICS_TOKEN names.\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    refresh_gauges(ctx.session_factory, ctx.jobs)
    body, content_type = exposition()
    return Response(body + store_exposition(ctx.session_factory), media_type=content_type)


def _bearer_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class SinceLastSync(Collector):
    """`deskbridge_connection_seconds_since_success`: each connection's time since its last good sync."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "deskbridge_connection_seconds_since_success",
            "Seconds since a connection's last successful sync (a connection never synced is left out).",
            labels=["connection_id", "kind"],
        )
        now = utcnow()
        with self.session_factory() as session:
            rows = session.execute(
                select(Connection.id, Connection.kind, Connection.last_synced_at).where(
                    Connection.last_synced_at.is_not(None)
                )
            )
            for connection_id, kind, synced_at in rows:
                if synced_at is not None:
                    family.add_metric([str(connection_id), kind.value], max(0.0, (now - synced_at).total_seconds()))
        yield family


def store_exposition(session_factory: sessionmaker[Session]) -> bytes:
    """The metrics read from the store at this scrape, in Prometheus text (empty when it cannot be read)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SinceLastSync(session_factory))
    try:
        return generate_latest(registry)
    except Exception:
        logger.warning("could not read the connections' last syncs for /metrics", exc_info=True)
        return b""


def refresh_gauges(session_factory: sessionmaker[Session], jobs: Jobs) -> None:
    """Set the queue depth and outbox lag gauges to their current values."""
    # A broker or database that is down must not take the rest of the scrape with it.
    try:
        record_queue_depths(jobs.waiting())
    except Exception:
        logger.warning("could not read the queue depths for /metrics", exc_info=True)
    try:
        with session_factory() as session:
            oldest = outbox_relay.oldest_unrelayed(session)
        OUTBOX_LAG.set(0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds()))
    except Exception:
        logger.warning("could not read the outbox lag for /metrics", exc_info=True)


class RequestMetrics:
    """ASGI middleware counting HTTP requests and timing them by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting a response

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = self._template(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        """The matched route's full path template, such as /v1/webhooks/{webhook_id}."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        if self._templates is None:
            # The route in the scope is the one declared on its APIRouter: its own path lacks the
            # prefixes it was included under, which only the app's route contexts know.
            self._templates = {
                id(context.original_route): context.path_format or ""
                for context in iter_route_contexts(scope["app"].routes)
            }
        path = self._templates.get(id(route)) or getattr(route, "path_format", None)
        return path if isinstance(path, str) else UNMATCHED
