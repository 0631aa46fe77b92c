"""Discovery (RFC 7644 §4): what this server supports, its resource types and their schemas.

Honest about what we do: PATCH and filters (the ones api/scim/queries.py names) yes; bulk,
sorting, ETags and password changes no.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.scim import queries
from api.scim.common import ScimConnection, base_url
from api.scim.errors import ScimResponse, ScimRoute
from connectors.scim.errors import ScimError
from connectors.scim.schema import RESOURCE_KINDS, SCHEMAS

router = APIRouter(route_class=ScimRoute)


def service_provider_config(base: str) -> dict[str, Any]:
    """The ServiceProviderConfig document."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": queries.MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The connection's SCIM token, shown when the connection is made or its token rotated.",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


@router.get("/ServiceProviderConfig")
def get_service_provider_config(connection: ScimConnection, request: Request) -> Response:
    """What this SCIM server supports."""
    return ScimResponse(service_provider_config(base_url(request)))


@router.get("/ResourceTypes")
def list_resource_types(connection: ScimConnection, request: Request) -> Response:
    """User and Group."""
    items = [kind.document(base_url(request)) for kind in RESOURCE_KINDS]
    return ScimResponse(queries.list_response(items, len(items), queries.Paging(1, len(items))))


@router.get("/ResourceTypes/{name}")
def get_resource_type(name: str, connection: ScimConnection, request: Request) -> Response:
    """One resource type by name."""
    kind = next((kind for kind in RESOURCE_KINDS if kind.name == name), None)
    if kind is None:
        raise ScimError(404, f"no resource type {name!r}")
    return ScimResponse(kind.document(base_url(request)))


@router.get("/Schemas")
def list_schemas(connection: ScimConnection, request: Request) -> Response:
    """The User, Group and Enterprise User schemas."""
    items = [schema.document(base_url(request)) for schema in SCHEMAS]
    return ScimResponse(queries.list_response(items, len(items), queries.Paging(1, len(items))))


@router.get("/Schemas/{schema_id}")
def get_schema(schema_id: str, connection: ScimConnection, request: Request) -> Response:
    """One schema by URN."""
    schema = next((schema for schema in SCHEMAS if schema.id == schema_id), None)
    if schema is None:
        raise ScimError(404, f"no schema {schema_id!r}")
    return ScimResponse(schema.document(base_url(request)))
