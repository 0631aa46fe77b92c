"""`GET /metrics` (Prometheus text, no auth) and the API's own request metrics.

The exposition is the worker's (worker.metrics): one scrape of the API shows deliveries, actors,
queues and the outbox as well as requests. Queue depth and outbox lag are read fresh at each scrape,
since both are cheap to read from here and a gauge set only by the scheduler would lag behind.
"""

from __future__ import annotations

import logging
import time

import dramatiq
from fastapi import APIRouter, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import context
from store.columns import utcnow
from store.services import webhook_relay
from worker.metrics import OUTBOX_LAG, exposition, record_queue_depth

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
    refresh_gauges(context(request).session_factory)
    body, content_type = exposition()
    return Response(body, media_type=content_type)


def refresh_gauges(session_factory: sessionmaker[Session]) -> None:
    """Set the queue depth and outbox lag gauges to their current values."""
    # A broker or database that is down must not take the rest of the scrape with it.
    try:
        record_queue_depth(dramatiq.get_broker())
    except Exception:
        logger.warning("could not read the queue depths for /metrics", exc_info=True)
    try:
        with session_factory() as session:
            oldest = webhook_relay.oldest_unrelayed(session)
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
