"""Request dependencies: the store session, the caller behind the token, and the access rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext
from api.errors import ApiError
from api.ratelimit import day_window
from api.usage import TokenUsage
from store.models import Role
from store.reads import Reads
from store.services import tokens
from store.services.members import hash_secret
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


# Both read the one `Authorization` header; declared through fastapi.security so that the OpenAPI document
# names them on every operation that needs a token (for `/docs` and generated clients). Neither refuses by
# itself (auto_error=False): `_secret` answers in the API's own words.
TOKEN = APIKeyHeader(
    name="Authorization",
    scheme_name="token",
    description="Your secret token after the word `Token`, as WiggleDesk clients send it: "
    "`Authorization: Token <secret>`.",
    auto_error=False,
)
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="The same secret token as a bearer token: `Authorization: Bearer <secret>`.",
    auto_error=False,
)


async def _secret(
    header: Annotated[str | None, Security(TOKEN)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> str:
    """The secret of `Authorization: Token <secret>` or `Bearer <secret>`, or 401."""
    return required_secret(header)


def required_secret(header: str | None) -> str:
    """The secret in an `Authorization` header's value, or 401 in the API's words."""
    if not header:
        raise ApiError(401, "Authentication credentials were not provided.", headers={"WWW-Authenticate": "Token"})
    secret = secret_of(header)
    if secret is None:
        raise ApiError(
            401, "Use the header 'Authorization: token <your secret token>'.", headers={"WWW-Authenticate": "Token"}
        )
    return secret


def secret_of(header: str) -> str | None:
    """The secret in an `Authorization` header's value (`Token <secret>` or `Bearer <secret>`), or None."""
    scheme, _, secret = header.partition(" ")
    if scheme.lower() not in _SCHEMES or not secret.strip():
        return None
    return secret.strip()


def authenticated(request: Request, db: DB, secret: Annotated[str, Depends(_secret)]) -> Caller:
    """Who is calling, or 401. Counts the request against the member's daily limit."""
    return authenticate_request(request, db, secret)


def authenticate_request(request: Request, db: Session, secret: str) -> Caller:
    """The caller behind `secret`, or 401; the request counted against the member's daily limit (429
    past it), its figures left in `request.state.ratelimit` for the `X-RateLimit-*` headers."""
    caller = tokens.authenticate(db, secret)
    if caller is None:
        raise _invalid_token()
    usage: TokenUsage = request.app.state.token_usage
    if usage.note(caller.token_id):
        usage.flush()
    return _limited(request, caller, count_request(context(request), caller.member.id))


async def authenticate_on_loop(request: Request, secret: str) -> Caller:
    """`authenticate_request` for a coroutine: the token looked up and the request counted on the event
    loop (`reads`, `Counter.hit_async`), without a trip to the thread pool."""
    row = await reads(request).first(tokens.AUTHENTICATE, {"token_hash": hash_secret(secret)})
    if row is None:
        raise _invalid_token()
    caller = tokens.caller_of(row)
    usage: TokenUsage = request.app.state.token_usage
    if usage.note(caller.token_id):
        await run_in_threadpool(usage.flush)
    return _limited(request, caller, await count_request_async(context(request), caller.member.id))


def _invalid_token() -> ApiError:
    return ApiError(401, "Invalid token.", code="invalid_token", headers={"WWW-Authenticate": "Token"})


def _limited(request: Request, caller: Caller, figures: RateLimit | None) -> Caller:
    """`caller`, the figures left for the `X-RateLimit-*` headers; 429 past the limit."""
    if figures is None:
        return caller
    request.state.ratelimit = figures
    if figures.exceeded:
        raise ApiError(
            429,
            f"Request limit of {figures.limit} a day reached; it resets at midnight UTC.",
            code="rate_limited",
            headers={"Retry-After": str(figures.reset)},
        )
    return caller


class RateLimit(NamedTuple):
    """A member's daily figures after counting a request: what the `X-RateLimit-*` headers say."""

    limit: int
    remaining: int
    reset: int  # seconds until midnight UTC
    exceeded: bool


def count_request(ctx: ApiContext, member_id: int) -> RateLimit | None:
    """Count one request of the member against the daily limit; None when there is no limit."""
    limit = ctx.rate_limit_per_day
    if limit <= 0:
        return None
    day, reset = day_window()
    return _figures(limit, reset, ctx.counter.hit(f"ratelimit:{member_id}:{day}", reset))


async def count_request_async(ctx: ApiContext, member_id: int) -> RateLimit | None:
    """`count_request` for a coroutine."""
    limit = ctx.rate_limit_per_day
    if limit <= 0:
        return None
    day, reset = day_window()
    return _figures(limit, reset, await ctx.counter.hit_async(f"ratelimit:{member_id}:{day}", reset))


def _figures(limit: int, reset: int, used: int) -> RateLimit:
    return RateLimit(limit, max(0, limit - used), reset, used > limit)


def count_refused_request(ctx: ApiContext, authorization: str) -> RateLimit | None:
    """For a request answered before any route authenticated it (a refusal at the edge, an unrouted path, a
    method the path does not answer): count it against the caller's limit when its token is valid, and
    return the figures for its `X-RateLimit-*` headers. None for a caller without a valid token."""
    secret = secret_of(authorization)
    if secret is None:
        return None
    with ctx.session_factory() as db:
        caller = tokens.authenticate(db, secret)
    return None if caller is None else count_request(ctx, caller.member.id)


# The access rules do no I/O, so they are `async def`: FastAPI runs them on the event loop instead of
# handing each to the thread pool.


async def api_caller(caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
    """An authenticated caller whose organisation has the API on and who was given API access."""
    return check_api_access(caller)


def check_api_access(caller: Caller) -> Caller:
    """`caller`, if their organisation has the API on and they were given API access; else 403."""
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
# What the routes that authenticate in `api_caller_on_loop` declare in the OpenAPI document, as `ApiCaller`'s
# security dependencies (TOKEN, BEARER) make FastAPI declare it: either scheme.
SECURITY: dict[str, Any] = {"security": [{TOKEN.scheme_name: []}, {BEARER.scheme_name: []}]}


def reads(request: Request) -> Reads:
    """The store's reads on the event loop (see store.reads; made by `api.app.create_app`)."""
    found: Reads = request.app.state.reads
    return found


async def api_caller_on_loop(request: Request) -> Caller:
    """The request's caller, checked as `ApiCaller` checks it (in the same order), without leaving the
    event loop: for the busiest reads, which then read through `reads`.

    Each hop between the event loop and a worker thread costs about as much as such a route's query.
    The header is read here rather than by security dependencies, which FastAPI would solve one by one
    on every request; such a route declares `SECURITY` for the document.
    """
    secret = required_secret(request.headers.get("authorization"))
    return check_api_access(await authenticate_on_loop(request, secret))


# `ApiCaller` for an `async def` route that reads through `reads`: checked on the event loop (still before any
# query parameter is judged, as `ApiCaller` is). Such a route declares `SECURITY` for the document.
LoopApiCaller = Annotated[Caller, Depends(api_caller_on_loop)]
