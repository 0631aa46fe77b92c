"""`/scim/v2/Users`: people pushed by an identity provider, each write applied by the sync engine at once.

Our `id` is a new uuid (the directory row's external id); the client's own id stays in `externalId`.
Every write stages the person and decides in the request's transaction (engine.apply_now): a new
active user is invited or added, `active: false` or DELETE offboards (membership removed, future
bookings cancelled), a rename updates the member. A refused request changes nothing.
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
from connectors.records import DirectoryPage, RemovedUser
from connectors.scim import patch
from connectors.scim.documents import normalise
from connectors.scim.errors import ScimError, invalid_value
from connectors.scim.schema import USERS
from connectors.scim.translate import group_change, user_record
from store.models import DirectoryUser
from store.services import directory
from sync.directory.engine import apply_now

router = APIRouter(prefix="/Users", route_class=ScimRoute)

MAX_USERNAME = 320  # the directory row's column
Attributes = Annotated[str | None, Query(alias="attributes")]
Excluded = Annotated[str | None, Query(alias="excludedAttributes")]


def _found(db: Session, connection_id: int, user_id: str, *, for_update: bool = False) -> DirectoryUser:
    """The live user, or 404; `for_update` locks it for a write."""
    row = directory.scim_user(db, connection_id, user_id, for_update=for_update)
    if row is None:
        raise ScimError(404, f"no User {user_id}")
    return row


def _check_username(db: Session, connection_id: int, document: dict[str, Any], user_id: str | None) -> None:
    username = str(document["userName"])
    if len(username) > MAX_USERNAME:
        raise invalid_value(f"userName is longer than {MAX_USERNAME} characters")
    # Held to the end of the request's transaction: a concurrent create of the same name waits, then sees it.
    directory.hold_username(db, connection_id, username)
    if directory.username_taken(db, connection_id, username, other_than=user_id):
        raise ScimError(409, f"userName {username!r} is taken", "uniqueness")


def _write(db: Session, connection_id: int, user_id: str, document: dict[str, Any]) -> DirectoryUser:
    """Stage and decide the person, then keep the document for reads."""
    apply_now(db, connection_id, DirectoryPage(users=(user_record(user_id, document),)))
    row = _found(db, connection_id, user_id)
    directory.keep_document(row, stamp(document, row.document))
    return row


@router.post("", status_code=201)
def create_user(body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
    """Create a User (201 with its Location); a userName taken in this connection is 409 uniqueness."""
    document = normalise(USERS, body)
    _check_username(db, connection.id, document, None)
    row = _write(db, connection.id, uuid.uuid4().hex, document)
    resource = render(USERS, row, base_url(request))
    db.commit()
    return ScimResponse(resource, status_code=201, headers={"Location": resource["meta"]["location"]})


@router.get("")
def list_users(
    connection: ScimConnection,
    db: DB,
    request: Request,
    filter: str | None = None,  # SCIM's parameter name
    start_index: Annotated[int | None, Query(alias="startIndex")] = None,
    count: int | None = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    """Users, in creation order, narrowed by `filter` and paged by `startIndex`/`count`."""
    paging = queries.Paging.of(start_index, count)
    rows, total = directory.scim_users(
        db, connection.id, queries.lookup(USERS, filter), offset=paging.offset, limit=paging.count
    )
    base = base_url(request)
    resources = [queries.project(USERS, render(USERS, row, base), attributes, excluded) for row in rows]
    return ScimResponse(queries.list_response(resources, total, paging))


@router.get("/{user_id}")
def get_user(
    user_id: str,
    connection: ScimConnection,
    db: DB,
    request: Request,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    """One User (404 when unknown or deleted)."""
    row = _found(db, connection.id, user_id)
    return ScimResponse(queries.project(USERS, render(USERS, row, base_url(request)), attributes, excluded))


@router.put("/{user_id}")
def replace_user(user_id: str, body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
    """Replace a User with the document sent (what it leaves out is gone; `active` defaults to true)."""
    _found(db, connection.id, user_id, for_update=True)
    document = normalise(USERS, body)
    _check_username(db, connection.id, document, user_id)
    row = _write(db, connection.id, user_id, document)
    resource = render(USERS, row, base_url(request))
    db.commit()
    return ScimResponse(resource)


@router.patch("/{user_id}")
def patch_user(user_id: str, body: Body, connection: ScimConnection, db: DB, request: Request) -> Response:
    """Apply PATCH operations (see connectors.scim.patch for the quirks accepted); answers the new User."""
    row = _found(db, connection.id, user_id, for_update=True)
    document = patch.apply(USERS, attributes_of(row), body)
    _check_username(db, connection.id, document, user_id)
    row = _write(db, connection.id, user_id, document)
    resource = render(USERS, row, base_url(request))
    db.commit()
    return ScimResponse(resource)


@router.delete("/{user_id}", status_code=204)
def delete_user(user_id: str, connection: ScimConnection, db: DB) -> Response:
    """The person leaves: offboarded, and taken out of the groups that listed them."""
    # The groups first, then the person: the order a group PATCH (group, then its members) takes them in.
    groups = directory.lock_scim_groups_of(db, connection.id, user_id)
    _found(db, connection.id, user_id, for_update=True)
    changes = []
    for group in groups:
        before = attributes_of(group)
        after = {**before, "members": [item for item in before.get("members", []) if item.get("value") != user_id]}
        if not after["members"]:
            del after["members"]
        changes.append(group_change(group.external_id, before, after))
        directory.keep_document(group, stamp(after, group.document))
    apply_now(db, connection.id, DirectoryPage(removed=(RemovedUser(user_id),), groups=tuple(changes)))
    db.commit()
    return Response(status_code=204)
