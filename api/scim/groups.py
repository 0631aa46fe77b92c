"""`/scim/v2/Groups`: groups pushed by an identity provider; members are our User ids.

Each write goes through the sync engine in the request's transaction, so a group the connection
opts in (`team_groups`) is mirrored as a team with its in-scope members.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from api.deps import DB
from api.scim import queries
from api.scim.common import Body, ScimConnection, attributes_of, base_url, render, stamp
from api.scim.errors import ScimResponse, ScimRoute
from connectors.records import DirectoryGroup as GroupRecord
from connectors.records import DirectoryPage
from connectors.scim import patch
from connectors.scim.documents import normalise
from connectors.scim.errors import ScimError, invalid_value
from connectors.scim.schema import GROUPS
from connectors.scim.translate import group_change, group_deleted, group_record
from store.models import DirectoryGroup
from store.services import directory
from sync.directory.engine import apply_now

router = APIRouter(prefix="/Groups", route_class=ScimRoute)

MAX_NAME = 200  # the directory row's column (and a team's name)
Attributes = Annotated[str | None, Query(alias="attributes")]
Excluded = Annotated[str | None, Query(alias="excludedAttributes")]


def _found(db: Session, connection_id: int, group_id: str, *, for_update: bool = False) -> DirectoryGroup:
    """The live group, or 404; `for_update` locks it for a write (concurrent PATCHes apply one after another)."""
    row = directory.scim_group(db, connection_id, group_id, for_update=for_update)
    if row is None:
        raise ScimError(404, f"no Group {group_id}")
    return row


def _checked(document: dict[str, Any]) -> dict[str, Any]:
    if len(str(document["displayName"])) > MAX_NAME:
        raise invalid_value(f"displayName is longer than {MAX_NAME} characters")
    return document


def _write(db: Session, connection_id: int, record: GroupRecord, document: dict[str, Any]) -> DirectoryGroup:
    """Stage the group (the engine mirrors it as a team when opted in), then keep the document for reads."""
    apply_now(db, connection_id, DirectoryPage(groups=(record,)))
    row = _found(db, connection_id, record.external_id)
    directory.keep_document(row, stamp(document, row.document))
    return row


@router.post("", status_code=201)
def create_group(body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
    """Create a Group (201 with its Location)."""
    document = _checked(normalise(GROUPS, body))
    group_id = uuid.uuid4().hex
    row = _write(db, connection.id, group_record(group_id, document), document)
    resource = render(GROUPS, row, base_url(request))
    db.commit()
    return ScimResponse(resource, status_code=201, headers={"Location": resource["meta"]["location"]})


@router.get("")
def list_groups(
    connection: ScimConnection,
    db: DB,
    request: Request,
    filter: str | None = None,  # SCIM's parameter name
    start_index: Annotated[int | None, Query(alias="startIndex")] = None,
    count: int | None = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    """Groups, in creation order, narrowed by `filter` and paged by `startIndex`/`count`."""
    paging = queries.Paging.of(start_index, count)
    rows, total = directory.scim_groups(
        db, connection.id, queries.lookup(GROUPS, filter), offset=paging.offset, limit=paging.count
    )
    base = base_url(request)
    resources = [queries.project(GROUPS, render(GROUPS, row, base), attributes, excluded) for row in rows]
    return ScimResponse(queries.list_response(resources, total, paging))


@router.get("/{group_id}")
def get_group(
    group_id: str,
    connection: ScimConnection,
    db: DB,
    request: Request,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    """One Group (404 when unknown or deleted)."""
    row = _found(db, connection.id, group_id)
    return ScimResponse(queries.project(GROUPS, render(GROUPS, row, base_url(request)), attributes, excluded))


@router.put("/{group_id}")
def replace_group(group_id: str, body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
    """Replace a Group: its name and its whole membership."""
    _found(db, connection.id, group_id, for_update=True)
    document = _checked(normalise(GROUPS, body))
    row = _write(db, connection.id, group_record(group_id, document), document)
    resource = render(GROUPS, row, base_url(request))
    db.commit()
    return ScimResponse(resource)


@router.patch("/{group_id}")
def patch_group(group_id: str, body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
    """Apply PATCH operations: members added or removed (by path, filter or value list), displayName replaced."""
    row = _found(db, connection.id, group_id, for_update=True)
    before = attributes_of(row)
    document = _checked(patch.apply(GROUPS, before, body))
    row = _write(db, connection.id, group_change(group_id, before, document), document)
    resource = render(GROUPS, row, base_url(request))
    db.commit()
    return ScimResponse(resource)


@router.delete("/{group_id}", status_code=204)
def delete_group(group_id: str, connection: ScimConnection, db: DB) -> Response:
    """Delete a Group: its memberships end; a team it mirrored is no longer kept in step."""
    row = _found(db, connection.id, group_id, for_update=True)
    apply_now(db, connection.id, DirectoryPage(groups=(group_deleted(group_id, row.document),)))
    db.commit()
    return Response(status_code=204)
