"""Desks, rooms and other bookable places. Everyone may read; admins change them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field, StringConstraints

from api.deps import DB, AdminCaller, ApiCaller
from api.v1.common import PatchBody, RequestBody, Resource, Timestamp, path_id, problems
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.models import Desk
from store.services import desks

router = APIRouter(prefix="/desks", tags=["desks"])

KEYSET = Keyset("desks", (Desk.id,))
DeskId = Annotated[int, path_id("The desk's id.")]
# Mirrors store.services.desks.KINDS (a test keeps them equal), spelt out for the OpenAPI enum.
DeskKind = Literal["desk", "room", "parking", "locker", "other"]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Building = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Floor = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Zone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]


class DeskOut(Resource):
    """A bookable place."""

    id: int
    label: str = Field(description='What people call it, such as "11"; unique within a building.')
    building: str
    floor: str
    zone: str
    kind: str = Field(description="desk, room, parking, locker or other.")
    active: bool = Field(description="Inactive places cannot be booked.")
    created_at: Timestamp
    updated_at: Timestamp


class DeskIn(RequestBody):
    """A new bookable place."""

    label: Label
    building: Building = ""
    floor: Floor = ""
    zone: Zone = ""
    kind: DeskKind = "desk"


class DeskPatch(PatchBody):
    """The fields to change; leave a field out to keep it."""

    label: Label | None = None
    building: Building | None = None
    floor: Floor | None = None
    zone: Zone | None = None
    kind: DeskKind | None = None
    active: bool | None = None


@router.post("", status_code=201, summary="Create a desk", responses=problems(400, 409, 413, 415, 422))
def create_desk(body: DeskIn, response: Response, caller: AdminCaller, db: DB) -> DeskOut:
    """Add a bookable place (admins only). A label already used in the same building is a 409 conflict."""
    desk = desks.create(
        db, caller.organisation.id, body.label, building=body.building, floor=body.floor, zone=body.zone, kind=body.kind
    )
    db.commit()
    response.headers["Location"] = f"/v1/desks/{desk.id}"
    return DeskOut.model_validate(desk)


@router.get("", summary="List desks", responses=problems(422))
def list_desks(
    caller: ApiCaller,
    db: DB,
    paging: Paging,
    active: Annotated[bool | None, Query(description="Only active (true) or inactive (false) places.")] = None,
    kind: Annotated[DeskKind | None, Query(description="Only places of this kind.")] = None,
    building: Annotated[str | None, Query(max_length=100, description="Only places in this building.")] = None,
) -> Page[DeskOut]:
    """The organisation's bookable places, by id."""
    query = desks.select_desks(caller.organisation.id, active=active, kind=kind, building=building)
    rows, cursor = fetch(db, query, KEYSET, paging)
    return page_of([DeskOut.model_validate(row) for row in rows], cursor)


@router.get("/{desk_id}", summary="Get a desk", responses=problems(404))
def get_desk(desk_id: DeskId, caller: ApiCaller, db: DB) -> DeskOut:
    """One bookable place."""
    return DeskOut.model_validate(desks.get(db, caller.organisation.id, desk_id))


@router.patch("/{desk_id}", summary="Update a desk", responses=problems(400, 404, 409, 413, 415, 422))
def update_desk(desk_id: DeskId, body: DeskPatch, caller: AdminCaller, db: DB) -> DeskOut:
    """Change a place (admins only). Set `active` to false to stop new bookings of a place with history."""
    desk = desks.get(db, caller.organisation.id, desk_id)
    desks.update(db, desk, **body.model_dump(exclude_unset=True))
    db.commit()
    return DeskOut.model_validate(desk)


@router.delete("/{desk_id}", status_code=204, summary="Delete a desk", responses=problems(404, 409))
def delete_desk(desk_id: DeskId, caller: AdminCaller, db: DB) -> Response:
    """Delete a place that was never booked (admins only); one with bookings is a 409 conflict
    (deactivate it instead)."""
    desks.delete(db, desks.get(db, caller.organisation.id, desk_id))
    db.commit()
    return Response(status_code=204)
