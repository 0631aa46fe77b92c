"""The FastAPI application: WiggleDesk-compatible routes, `/v1`, health and the invitation page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import console, errors, health, invitation_page, metrics, scim
from api.compat import wiggledesk
from api.context import ApiContext
from api.middleware import Guard
from api.push import router as push
from api.push.resourceguru import route as resourceguru_hooks
from api.usage import TokenUsage
from api.v1 import common
from api.v1 import router as v1
from store.reads import reads_for


def create_app(ctx: ApiContext) -> FastAPI:
    """Build the app around the store and broker the composition root hands over."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.token_usage.flush()  # the uses noted since the last batch
        await app.state.reads.close()

    # /docs and /redoc load Swagger UI and ReDoc from files the package ships, not from a CDN.
    app = FastAPIOffline(
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks look up the global providers on every request; deskbridge
        # reports through Prometheus (api.metrics) and configures no OpenTelemetry, so they stay off.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="deskbridge",
        version="0.1.0",
        summary="Desk booking in step with directories, calendars and automations.",
    )
    app.state.context = ctx
    app.state.token_usage = TokenUsage(ctx.session_factory)
    app.state.reads = reads_for(ctx.session_factory)
    errors.install(app)
    app.add_middleware(Guard, max_body_bytes=ctx.max_body_bytes, max_import_bytes=ctx.max_import_bytes)
    app.add_middleware(metrics.RequestMetrics)  # added last: outermost, so it sees every answer
    app.include_router(health.router)
    # Inbound pushes first: routes are matched in order, and a sender waits on their answer.
    app.router.routes.insert(0, resourceguru_hooks)
    app.include_router(push)
    app.include_router(metrics.router)
    app.include_router(wiggledesk.router)
    app.include_router(v1.router)
    app.include_router(invitation_page.router)
    app.include_router(scim.router)
    console.install(app)
    _openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = common.document(wiggledesk.document(_openapi()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
