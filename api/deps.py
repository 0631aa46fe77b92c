"""Request dependencies: the store session, the caller behind the token, and the access rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext
from api.errors import ApiError
from api.ratelimit import day_window
from store.models import Role
from store.services import tokens
from store.services.tokens import Caller

_SCHEMES = ("token", "bearer")


def context(request: Request) -> ApiContext:
    """The composition root's hand-over (see api.app.create_app)."""
    ctx: ApiContext = request.app.state.context
    return ctx


async def session(request: Request) -> AsyncIterator[Session]:
    """A store session for the request. Routes that change state commit it themselves.

    Made on the event loop (no I/O until a query); closed on the thread pool when it holds a
    connection, since handing the connection back ends its transaction over the network.
    """
    db = context(request).session_factory()
    try:
        yield db
    finally:
        if db.get_bind() is not None and db.in_transaction():
            await run_in_threadpool(db.close)
        else:
            db.close()


DB = Annotated[Session, Depends(session)]


def _secret(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise ApiError(401, "Authentication credentials were not provided.", headers={"WWW-Authenticate": "Token"})
    if scheme.lower() not in _SCHEMES or not secret.strip():
        raise ApiError(
            401, "Use the header 'Authorization: token <your secret token>'.", headers={"WWW-Authenticate": "Token"}
        )
    return secret.strip()


def authenticated(request: Request, db: DB) -> Caller:
    """Who is calling, or 401. Counts the request against the member's daily limit."""
    caller = tokens.authenticate(db, _secret(request))
    if caller is None:
        raise ApiError(401, "Invalid token.", code="invalid_token", headers={"WWW-Authenticate": "Token"})
    request.app.state.token_usage.note(caller.token_id)
    _count_request(request, caller)
    return caller


def _count_request(request: Request, caller: Caller) -> None:
    ctx = context(request)
    limit = ctx.rate_limit_per_day
    if limit <= 0:
        return
    day, reset = day_window()
    used = ctx.counter.hit(f"ratelimit:{caller.member.id}:{day}", reset)
    request.state.ratelimit = (limit, max(0, limit - used), reset)
    if used > limit:
        raise ApiError(
            429,
            f"Request limit of {limit} a day reached; it resets at midnight UTC.",
            code="rate_limited",
            headers={"Retry-After": str(reset)},
        )


# The access rules do no I/O, so they are `async def`: FastAPI runs them on the event loop instead of
# handing each to the thread pool.


async def api_caller(caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
    """An authenticated caller whose organisation has the API on and who was given API access."""
    if not caller.organisation.api_enabled:
        raise ApiError(
            403,
            "API access is turned off for this organisation. An admin can turn it on in the organisation settings.",
            code="api_disabled",
        )
    if not caller.member.api_access:
        raise ApiError(403, "Your account has not been given API access. Ask an admin.", code="no_api_access")
    return caller


async def admin_caller(caller: Annotated[Caller, Depends(api_caller)]) -> Caller:
    """An API caller who is an admin of the organisation."""
    if caller.member.role is not Role.ADMIN:
        raise ApiError(403, "Only admins can do this.", code="admin_only")
    return caller


async def admin_without_switch(caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
    """An admin, even while the organisation's API is off: how the switch is turned on."""
    if caller.member.role is not Role.ADMIN:
        raise ApiError(403, "Only admins can do this.", code="admin_only")
    return caller


ApiCaller = Annotated[Caller, Depends(api_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]
