"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import context

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The store and the broker answer; 503 with what is down otherwise."""
    ctx = context(request)
    checks = {"database": _database_ok(request), "broker": ctx.broker_ping()}
    ready = all(checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": {k: "ok" if v else "down" for k, v in checks.items()}}
    return JSONResponse(body, status_code=200 if ready else 503)


def _database_ok(request: Request) -> bool:
    try:
        with context(request).session_factory() as db:
            db.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
