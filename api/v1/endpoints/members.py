"""Members of the caller's organisation: list, read, change role/name/API access, remove, restore."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, EmailStr, Field

from api.deps import DB, AdminCaller, ApiCaller
from api.v1.common import PatchBody, Resource, Timestamp, path_id, problems
from api.v1.endpoints.tokens import ApiTokenOut, TokenCreated
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.models import Member, MemberStatus, Role
from store.services import members, restores

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


class NotRestored(BaseModel):
    """One thing the removal took that did not come back."""

    kind: restores.Kind
    id: int = Field(description="The booking's, team's or old token's id.")
    reason: restores.Reason = Field(
        description="; ".join(f"`{code}`: {meaning}" for code, meaning in restores.REASONS.items())
    )
    detail: str = Field(description="The same, for a person to read.")


class Restored(BaseModel):
    """A removal undone: the member as they are now, and what came back and what did not."""

    member: MemberOut
    removed_at: Timestamp = Field(description="When the removal now undone was made.")
    teams: list[int] = Field(description="The teams they are in again (ids).")
    bookings: list[int] = Field(description="The bookings booked again (ids), each with its `booking.restored` event.")
    tokens: list[TokenCreated] = Field(
        description="A new token for each one the removal revoked (those stay revoked), its secret shown here only."
    )
    not_restored: list[NotRestored] = Field(description="What could not come back, and why.")


@router.post("/{member_id}/restore", summary="Restore a removed member", responses=problems(404, 409))
def restore_member(member_id: MemberId, caller: AdminCaller, db: DB) -> Restored:
    """Undo a member's last removal (admins only), within the organisation's `offboarding_undo_days` of it
    (30 by default): the membership as it was (active, or invited again), its API access flag and its
    teams, a new token for each one the removal revoked, and each booking the removal cancelled that has
    not ended and whose desk is still free at that time. What could not come back is listed with the
    reason; the rest is restored all the same. Takes no body.

    A member who is not removed is a 409 (`not_removed`), as is one whose removal is older than the
    window (`undo_expired`) or was made before removals were recorded (`nothing_to_undo`): invite or
    add them again instead.
    """
    member = members.get(db, caller.organisation.id, member_id)
    done = restores.restore(db, member, source="api")
    db.commit()
    return Restored(
        member=MemberOut.model_validate(member),
        removed_at=done.removal.removed_at,
        teams=[team.id for team in done.teams],
        bookings=[booking.id for booking in done.bookings],
        tokens=[
            TokenCreated.model_validate({**ApiTokenOut.model_validate(token).model_dump(), "secret": secret})
            for token, secret in done.tokens
        ],
        not_restored=[NotRestored(kind=i.kind, id=i.id, reason=i.reason, detail=i.detail) for i in done.unrestored],
    )
