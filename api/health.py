"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api.deps import context
from store.models import Connection, WebhookEndpoint
from store.secret_box import UndecryptableSecret

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> dict[str, object]:
    """The process is up (200 while it answers); `degraded` says what works in a reduced way meanwhile."""
    degraded = context(request).counter.degraded
    return {"status": "ok", "degraded": {"rate_limits": degraded}} if degraded else {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The store and the broker answer; 503 with what is down otherwise."""
    ctx = context(request)
    checks = {"database": _database_ok(request), "broker": ctx.jobs.ready()}
    key_problem = _secret_key_problem(request) if checks["database"] else None
    checks["secret_key"] = key_problem is None
    ready = all(checks.values())
    body: dict[str, object] = {
        "status": "ok" if ready else "unavailable",
        "checks": {k: "ok" if v else "down" for k, v in checks.items()},
    }
    if key_problem is not None:
        body["reasons"] = {"secret_key": key_problem}
    if ctx.counter.degraded:  # the API still answers: rate limits are counted per process meanwhile
        body["degraded"] = {"rate_limits": ctx.counter.degraded}
    return JSONResponse(body, status_code=200 if ready else 503)


def _database_ok(request: Request) -> bool:
    try:
        with context(request).session_factory() as db:
            db.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _secret_key_problem(request: Request) -> str | None:
    """Why the stored secrets cannot be read with this process's key, or None when they can.

    Decrypts the oldest and the newest webhook signing secret and connection credentials (none stored:
    nothing to check): a process given another key than the one they were made with, or a key
    dropped from DESKBRIDGE_SECRET_KEY before its secrets were re-encrypted, shows here.
    """
    ctx = context(request)
    if ctx.secret_box is None:
        return None
    try:
        with ctx.session_factory() as db:
            samples = [
                *_ends(db, WebhookEndpoint.secret_encrypted, WebhookEndpoint.id, "a webhook's signing secret"),
                *_ends(db, Connection.credentials_encrypted, Connection.id, "a connection's credentials"),
            ]
    except Exception:
        return None  # the database check reports it
    for what, token in samples:
        try:
            ctx.secret_box.decrypt(token)
        except UndecryptableSecret:
            return UndecryptableSecret.reason(what)
    return None


def _ends(db: Session, column: Any, key: Any, what: str) -> list[tuple[str, str]]:
    """The stored ciphertexts of `column` in the rows of the lowest and highest `key`."""
    lowest, highest = db.execute(select(func.min(key), func.max(key)).where(column.is_not(None))).one()
    ids = {found for found in (lowest, highest) if found is not None}
    if not ids:
        return []
    return [(what, token) for token in db.scalars(select(column).where(key.in_(ids)))]
