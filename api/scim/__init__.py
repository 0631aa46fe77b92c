"""SCIM 2.0 (`/scim/v2`): identity providers push Users and Groups with a connection's bearer token.

Every answer, errors included, is `application/scim+json`; a path or method we do not serve is a
SCIM 404 or 405 rather than the app's problem+json.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from api.scim import discovery, groups, users
from api.scim.common import PREFIX, ScimConnection
from api.scim.errors import ScimRoute, error_response
from connectors.scim.errors import ScimError

router = APIRouter(prefix=PREFIX, tags=["scim"], route_class=ScimRoute, include_in_schema=False)
router.include_router(discovery.router)
router.include_router(users.router)
router.include_router(groups.router)

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Each served path and its methods, to tell a wrong method (405) from a wrong path (404).
_SERVED = [
    (compile_path(PREFIX + route.path)[0], route.methods or set())
    for part in (discovery.router, users.router, groups.router)
    for route in part.routes
    if isinstance(route, APIRoute)
]


@router.post("/.search")
def search_everything(connection: ScimConnection) -> Response:
    """Searching Users and Groups at once (RFC 7644 §3.4.3 at the root) is not supported: 501."""
    return error_response(ScimError(501, "search across resource types is not supported; query /Users or /Groups"))


@router.api_route("/{rest:path}", methods=_METHODS)
def not_served(rest: str, connection: ScimConnection, request: Request) -> Response:
    """Anything else under /scim/v2: 405 where the path exists with other methods, else 404."""
    path = request.url.path
    allowed = sorted({method for pattern, methods in _SERVED if pattern.match(path) for method in methods})
    if allowed:
        return error_response(
            ScimError(405, f"{request.method} is not allowed here; use {', '.join(allowed)}"),
            {"Allow": ", ".join(allowed)},
        )
    return error_response(ScimError(404, f"nothing at {PREFIX}/{rest}"))
