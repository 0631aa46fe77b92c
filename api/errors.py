"""Errors in the shape each route family documents.

`/v1` speaks RFC 9457 (`application/problem+json`). The WiggleDesk-compatible `/api/` routes speak
Django REST framework's shapes: `{"detail": "..."}`, or `{"field": ["message"]}` for bad input.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.scim.errors import ScimError
from store.errors import Conflict, Invalid, NotAllowed, NotFound, StoreError

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://deskbridge.dev/problems/"
SCIM_PREFIX = "/scim/v2/"

_STATUS_OF: dict[type[StoreError], int] = {NotFound: 404, Conflict: 409, Invalid: 422, NotAllowed: 409}
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
}


class ApiError(Exception):
    """An error a route raises on purpose, rendered in the route family's shape."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _TITLES.get(status, "error").lower().replace(" ", "_")
        self.field = field
        self.headers = headers or {}


def is_compat(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    code: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(request.url.path, status, detail, code, errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(
    path: str, status: int, detail: str, code: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem document about a request to `path`."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": path,
    }
    if errors:
        body["errors"] = errors
    return body


def render(request: Request, error: ApiError) -> Response:
    """`error` in the shape of the request's route family."""
    if request.url.path.startswith(SCIM_PREFIX):  # what SCIM routes leave to the app (a row deleted meanwhile)
        from api.scim.errors import error_response  # here: the SCIM package imports api.deps, which imports us

        return error_response(ScimError(error.status, error.detail), error.headers or None)
    if is_compat(request):
        status = 400 if error.status in (409, 422) and error.field else error.status
        body: dict[str, Any] = (
            {error.field: [error.detail]} if status == 400 and error.field else {"detail": error.detail}
        )
        return JSONResponse(body, status_code=status, headers=error.headers)
    errors = [{"field": error.field, "detail": error.detail}] if error.field else None
    return problem(request, error.status, error.detail, code=error.code, errors=errors, headers=error.headers)


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [{"field": _field_name(tuple(e["loc"])), "detail": _message(e)} for e in exc.errors()]
    malformed = any(e["type"] == "json_invalid" for e in exc.errors())
    if is_compat(request):
        if malformed:
            return JSONResponse({"detail": "JSON parse error: the body is not valid JSON."}, status_code=400)
        fields: dict[str, list[str]] = {}
        for item in problems:
            fields.setdefault(item["field"], []).append(item["detail"])
        return JSONResponse(fields, status_code=400)
    if malformed:
        return problem(request, 400, "The request body is not valid JSON.", code="malformed_json")
    return problem(request, 422, "The request has invalid fields.", code="invalid_input", errors=problems)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "This field is not recognised."
    if error["type"] == "missing":
        return "This field is required."
    return str(error["msg"])


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render(request, exc)


async def _on_store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    status = _STATUS_OF.get(type(exc), 400)
    return render(request, ApiError(status, exc.message, code=exc.code, field=exc.field))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    return render(request, ApiError(exc.status_code, detail, headers=dict(exc.headers or {})))


async def _on_integrity_error(request: Request, exc: Exception) -> Response:
    # The services check uniqueness before writing; two requests racing past the same check meet the
    # database's constraint at commit instead. Nothing was written, and a retry gets the clear answer.
    return render(request, ApiError(409, "A concurrent change conflicts with this one; retry.", code="conflict"))


async def _on_deleted_meanwhile(request: Request, exc: Exception) -> Response:
    # A change read a row that a concurrent request deleted before this one wrote it (SQLAlchemy finds
    # no row to update or refresh). Nothing was written: what it was about is gone.
    detail = "It was deleted by a concurrent request."
    return render(request, ApiError(404, detail, code=NotFound.code))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the right shape."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(StaleDataError, _on_deleted_meanwhile)
    app.add_exception_handler(ObjectDeletedError, _on_deleted_meanwhile)
