"""What every SCIM route needs: the connection behind the bearer token, the JSON body, and rendering."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from api.deps import DB, context
from connectors.scim.errors import ScimError, invalid_syntax
from connectors.scim.schema import ResourceKind
from store.columns import utcnow
from store.models import Connection, DirectoryGroup, DirectoryUser
from store.services import connections
from store.times import iso

PREFIX = "/scim/v2"


def scim_connection(request: Request, db: DB) -> Connection:
    """The SCIM connection whose bearer token the request carries, or 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ScimError(401, "Send the connection's token: 'Authorization: Bearer <token>'.")
    connection = connections.authenticate_scim(db, token.strip())
    if connection is None:
        raise ScimError(401, "The bearer token is not valid (rotated, or its connection was removed).")
    return connection


ScimConnection = Annotated[Connection, Depends(scim_connection)]


async def scim_body(request: Request) -> Any:
    """The request body as JSON (sent as application/scim+json or application/json), or 400 invalidSyntax."""
    raw = await request.body()
    if not raw.strip():
        raise invalid_syntax("the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_syntax("the request body is not valid JSON") from None


Body = Annotated[Any, Depends(scim_body)]


def base_url(request: Request) -> str:
    """Where the SCIM endpoints are published (the public base URL, so locations work behind a proxy)."""
    return context(request).public_base_url.rstrip("/") + PREFIX


def stamp(document: dict[str, Any], previous: dict[str, Any] | None, now: datetime | None = None) -> dict[str, Any]:
    """The document to keep: the client's attributes and when the resource was created and last changed."""
    moment = iso(now or utcnow())
    created = ((previous or {}).get("meta") or {}).get("created", moment)
    return {**document, "meta": {"created": created, "lastModified": moment}}


def attributes_of(row: DirectoryUser | DirectoryGroup) -> dict[str, Any]:
    """The kept document without our bookkeeping (`meta`): what PATCH applies to."""
    return {key: value for key, value in (row.document or {}).items() if key != "meta"}


def render(kind: ResourceKind, row: DirectoryUser | DirectoryGroup, base: str) -> dict[str, Any]:
    """The resource as SCIM reads answer it: the kept document with its `id` and `meta`."""
    document = dict(row.document or {})
    kept_meta = document.pop("meta", None) or {}
    schemas = document.pop("schemas", [kind.core.id])
    return {
        "schemas": schemas,
        "id": row.external_id,
        **document,
        "meta": {
            "resourceType": kind.name,
            **kept_meta,
            "location": f"{base}/{kind.endpoint}/{row.external_id}",
        },
    }
