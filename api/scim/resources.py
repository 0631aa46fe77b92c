"""One SCIM resource router for Users and Groups: listing (filter, paging, projection), get, create,
replace, patch and delete, and their errors, written once.

A resource (`api/scim/users.py`, `groups.py`) gives only what is its own: its schema, how a document
is checked beyond the schema, how it becomes a page of directory records, how its rows are found and
listed, and what its deletion applies. Every write goes through the sync engine in the request's
transaction (`engine.apply_now`), then keeps the client's document for reads; a refused request
changes nothing. Our `id` is a new uuid (the directory row's external id).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from api.deps import DB
from api.scim import queries
from api.scim.common import Body, ScimConnection, attributes_of, base_url, render, stamp
from api.scim.errors import ScimResponse, ScimRoute
from connectors.records import DirectoryPage
from connectors.scim import patch
from connectors.scim.documents import normalise
from connectors.scim.errors import ScimError
from connectors.scim.schema import ResourceKind
from store.models import DirectoryGroup, DirectoryUser
from store.services import directory
from store.services.directory import Lookup
from sync.directory.engine import apply_now

Row = DirectoryUser | DirectoryGroup
Attributes = Annotated[str | None, Query(alias="attributes")]
Excluded = Annotated[str | None, Query(alias="excludedAttributes")]


class Resource(ABC):
    """What one SCIM resource type is to the router."""

    kind: ResourceKind

    @abstractmethod
    def find(self, db: Session, connection_id: int, resource_id: str, *, for_update: bool) -> Row | None:
        """The live row, or None; `for_update` locks it for a write (concurrent writes apply one after another)."""

    @abstractmethod
    def listing(
        self, db: Session, connection_id: int, lookup: Lookup, *, offset: int, limit: int
    ) -> tuple[list[Row], int]:
        """A page of the rows `lookup` selects, in creation order, and how many it selects in all."""

    @abstractmethod
    def check(self, db: Session, connection_id: int, document: dict[str, Any], resource_id: str | None) -> None:
        """Refuse (ScimError) what the schema lets through and we do not take; `resource_id` None: a create."""

    @abstractmethod
    def page(self, resource_id: str, document: dict[str, Any], before: dict[str, Any] | None) -> DirectoryPage:
        """The directory records a write of `document` makes; `before`: what a PATCH started from."""

    @abstractmethod
    def removal(self, db: Session, connection_id: int, resource_id: str) -> DirectoryPage:
        """What deleting the resource applies, after locking what it changes (404 when it is not there)."""

    def found(self, db: Session, connection_id: int, resource_id: str, *, for_update: bool = False) -> Row:
        """The live row, or 404."""
        row = self.find(db, connection_id, resource_id, for_update=for_update)
        if row is None:
            raise ScimError(404, f"no {self.kind.name} {resource_id}")
        return row


def router(resource: Resource) -> APIRouter:
    """The routes of `resource` under `/{its endpoint}`."""
    kind = resource.kind
    routes = APIRouter(prefix=f"/{kind.endpoint}", route_class=ScimRoute)

    def write(db: Session, connection_id: int, resource_id: str, document: dict[str, Any], before: Any) -> Row:
        """Stage and decide, then keep the document for reads."""
        apply_now(db, connection_id, resource.page(resource_id, document, before))
        row = resource.found(db, connection_id, resource_id)
        directory.keep_document(row, stamp(document, row.document))
        return row

    @routes.post("", status_code=201)
    def create(body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
        """Create a resource (201 with its Location)."""
        document = normalise(kind, body)
        resource.check(db, connection.id, document, None)
        row = write(db, connection.id, uuid.uuid4().hex, document, None)
        rendered = render(kind, row, base_url(request))
        db.commit()
        return ScimResponse(rendered, status_code=201, headers={"Location": rendered["meta"]["location"]})

    @routes.get("")
    def list_resources(
        connection: ScimConnection,
        db: DB,
        request: Request,
        filter: str | None = None,  # SCIM's parameter name
        start_index: Annotated[int | None, Query(alias="startIndex")] = None,
        count: int | None = None,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> Response:
        """Resources in creation order, narrowed by `filter` and paged by `startIndex`/`count`."""
        paging = queries.Paging.of(start_index, count)
        rows, total = resource.listing(
            db, connection.id, queries.lookup(kind, filter), offset=paging.offset, limit=paging.count
        )
        base = base_url(request)
        resources = [queries.project(kind, render(kind, row, base), attributes, excluded) for row in rows]
        return ScimResponse(queries.list_response(resources, total, paging))

    @routes.get("/{resource_id}")
    def get(
        resource_id: str,
        connection: ScimConnection,
        db: DB,
        request: Request,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> Response:
        """One resource (404 when unknown or deleted)."""
        row = resource.found(db, connection.id, resource_id)
        return ScimResponse(queries.project(kind, render(kind, row, base_url(request)), attributes, excluded))

    @routes.put("/{resource_id}")
    def replace(resource_id: str, body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
        """Replace a resource with the document sent (what it leaves out is gone)."""
        resource.found(db, connection.id, resource_id, for_update=True)
        document = normalise(kind, body)
        resource.check(db, connection.id, document, resource_id)
        row = write(db, connection.id, resource_id, document, None)
        rendered = render(kind, row, base_url(request))
        db.commit()
        return ScimResponse(rendered)

    @routes.patch("/{resource_id}")
    def patch_resource(resource_id: str, body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
        """Apply PATCH operations (see connectors.scim.patch for the quirks accepted); answers the result."""
        row = resource.found(db, connection.id, resource_id, for_update=True)
        before = attributes_of(row)
        document = patch.apply(kind, before, body)
        resource.check(db, connection.id, document, resource_id)
        row = write(db, connection.id, resource_id, document, before)
        rendered = render(kind, row, base_url(request))
        db.commit()
        return ScimResponse(rendered)

    @routes.delete("/{resource_id}", status_code=204)
    def delete(resource_id: str, connection: ScimConnection, db: DB) -> Response:
        """Delete a resource: what its removal applies (see each resource)."""
        apply_now(db, connection.id, resource.removal(db, connection.id, resource_id))
        db.commit()
        return Response(status_code=204)

    return routes
