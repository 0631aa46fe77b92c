"""Members of the caller's organisation: list, read, change role/name/API access, remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import EmailStr, Field

from api.deps import DB, AdminCaller, ApiCaller
from api.v1.common import PatchBody, Resource, Timestamp, path_id, problems
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.models import Member, MemberStatus, Role
from store.services import members

router = APIRouter(prefix="/members", tags=["members"])

KEYSET = Keyset("members", (Member.id,))
MemberId = Annotated[int, path_id("The member's id.")]


class MemberOut(Resource):
    """A person's membership of the organisation."""

    id: int
    email: str = Field(description="Lower-cased; unique in the organisation.")
    display_name: str
    role: Role
    status: MemberStatus = Field(description="`invited` until they accept, `removed` once removed.")
    api_access: bool = Field(description="Whether they may use the API (granted by admins).")
    created_at: Timestamp
    updated_at: Timestamp
    removed_at: Timestamp | None


class MemberPatch(PatchBody):
    """The fields an admin may change; leave a field out to keep it."""

    display_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    api_access: bool | None = None


@router.get("", summary="List members", responses=problems(422))
def list_members(
    caller: ApiCaller,
    db: DB,
    paging: Paging,
    status: Annotated[MemberStatus | None, Query(description="Only members in this status.")] = None,
    role: Annotated[Role | None, Query(description="Only members with this role.")] = None,
    email: Annotated[EmailStr | None, Query(description="Only the member with this address (any case).")] = None,
) -> Page[MemberOut]:
    """The organisation's members, by id, including invited and removed ones unless `status` narrows it."""
    query = members.select_members(caller.organisation.id, status=status, role=role, email=email)
    rows, cursor = fetch(db, query, KEYSET, paging)
    return page_of([MemberOut.model_validate(row) for row in rows], cursor)


@router.get("/{member_id}", summary="Get a member", responses=problems(404))
def get_member(member_id: MemberId, caller: ApiCaller, db: DB) -> MemberOut:
    """One member of the organisation."""
    return MemberOut.model_validate(members.get(db, caller.organisation.id, member_id))


@router.patch("/{member_id}", summary="Update a member", responses=problems(400, 404, 409, 413, 415, 422))
def update_member(member_id: MemberId, body: MemberPatch, caller: AdminCaller, db: DB) -> MemberOut:
    """Change a member's display name, role or API access (admins only).

    Demoting the last active admin is a 409 conflict: an organisation always keeps one.
    """
    member = members.get(db, caller.organisation.id, member_id)
    members.update(db, member, display_name=body.display_name, role=body.role, api_access=body.api_access)
    db.commit()
    return MemberOut.model_validate(member)


@router.delete("/{member_id}", status_code=204, summary="Remove a member", responses=problems(404, 409))
def remove_member(member_id: MemberId, caller: AdminCaller, db: DB) -> Response:
    """Remove a membership (admins only). History stays; the member's future bookings are cancelled,
    their API tokens and pending invitations revoked. Removing a removed member changes nothing."""
    member = members.get(db, caller.organisation.id, member_id)
    members.remove(db, member, reason="member_removed")
    db.commit()
    return Response(status_code=204)
