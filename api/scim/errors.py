"""SCIM answers: `application/scim+json` bodies, and errors in RFC 7644 §3.12's shape.

The app's own handlers (api/errors.py) speak problem+json; SCIM clients expect their own error
message, so every SCIM route runs in `ScimRoute`, which renders whatever a route or its
dependencies raise before the app's handlers see it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError

from connectors.scim.errors import ScimError
from store.errors import Conflict, NotFound, StoreError

SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

logger = logging.getLogger(__name__)


class ScimResponse(Response):
    """JSON with SCIM's media type."""

    media_type = SCIM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(error: ScimError, headers: dict[str, str] | None = None) -> ScimResponse:
    """The SCIM error message for `error`."""
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(error.status), "detail": error.detail}
    if error.scim_type:
        body["scimType"] = error.scim_type
    return ScimResponse(body, status_code=error.status, headers=headers)


def _as_scim(error: Exception) -> ScimError:
    if isinstance(error, ScimError):
        return error
    if isinstance(error, RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path"))
        return ScimError(400, f"{where}: {first.get('msg', 'invalid')}", "invalidValue")
    if isinstance(error, NotFound):
        return ScimError(404, error.message)
    if isinstance(error, Conflict):
        return ScimError(409, error.message, "uniqueness")
    if isinstance(error, StoreError):
        return ScimError(400, error.message, "invalidValue")
    # IntegrityError: two requests raced past the same uniqueness check; nothing was written.
    return ScimError(409, "A concurrent change conflicts with this one; retry.", "uniqueness")


class ScimRoute(APIRoute):
    """A route whose errors, including its dependencies' (auth), are SCIM error messages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (ScimError, RequestValidationError, StoreError, IntegrityError) as error:
                scim = _as_scim(error)
                headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if scim.status == 401 else None
                return error_response(scim, headers)

        return scim_handler
