"""Invitations: admins invite by email and may revoke; the invitee accepts with the emailed token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import EmailStr, Field

from api.deps import DB, AdminCaller, ApiCaller
from api.v1.common import RequestBody, Resource, Timestamp, path_id, problems
from api.v1.endpoints.members import MemberOut
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.models import Invitation, InvitationStatus, Role
from store.services import members

router = APIRouter(prefix="/invitations", tags=["invitations"])
# Accepting needs no API token: the invitation token is the credential.
public_router = APIRouter(prefix="/invitations", tags=["invitations"])

KEYSET = Keyset("invitations", (Invitation.id,))
InvitationId = Annotated[int, path_id("The invitation's id.")]


class InvitationOut(Resource):
    """An invitation to join the organisation. The accept token is only ever in the email."""

    id: int
    member_id: int = Field(description="The membership the invitation is for (status `invited` until accepted).")
    email: str
    status: InvitationStatus = Field(description="A pending invitation past `expires_at` reads as `expired`.")
    source: str = Field(description="Where it came from: api, cli, directory…")
    invited_by_id: int | None
    expires_at: Timestamp
    sent_at: Timestamp | None = Field(description="When the email went out; null until the worker sends it.")
    accepted_at: Timestamp | None
    revoked_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationOut:
        """The invitation as a reader sees it now."""
        out = cls.model_validate(invitation)
        out.status = members.invitation_status(invitation)
        return out


class InvitationIn(RequestBody):
    """Whom to invite, and as what."""

    email: EmailStr
    role: Role = Role.MEMBER
    display_name: str = Field(default="", max_length=200)


class AcceptIn(RequestBody):
    """The token from the invitation email, and optionally the name to show."""

    token: str = Field(min_length=1, max_length=200)
    display_name: str = Field(default="", max_length=200)


@router.post(
    "",
    status_code=201,
    summary="Invite someone",
    responses=problems(400, 409, 413, 415, 422),
)
def create_invitation(body: InvitationIn, response: Response, caller: AdminCaller, db: DB) -> InvitationOut:
    """Invite someone by email (admins only); the email with the accept link goes out shortly after.

    Inviting someone already invited replaces their pending invitation; inviting an active member is
    a 409 conflict.
    """
    invitation = members.invite(
        db,
        caller.organisation.id,
        body.email,
        role=body.role,
        display_name=body.display_name,
        invited_by=members.get(db, caller.organisation.id, caller.member.id),
        source="api",
    )
    db.commit()
    response.headers["Location"] = f"/v1/invitations/{invitation.id}"
    return InvitationOut.of(invitation)


@router.get("", summary="List invitations", responses=problems(422))
def list_invitations(
    caller: ApiCaller,
    db: DB,
    paging: Paging,
    status: Annotated[InvitationStatus | None, Query(description="Only invitations in this status.")] = None,
) -> Page[InvitationOut]:
    """The organisation's invitations, by id."""
    rows, cursor = fetch(db, members.select_invitations(caller.organisation.id, status=status), KEYSET, paging)
    return page_of([InvitationOut.of(row) for row in rows], cursor)


@router.get("/{invitation_id}", summary="Get an invitation", responses=problems(404))
def get_invitation(invitation_id: InvitationId, caller: ApiCaller, db: DB) -> InvitationOut:
    """One invitation of the organisation."""
    return InvitationOut.of(members.get_invitation(db, caller.organisation.id, invitation_id))


@router.post("/{invitation_id}/revoke", summary="Revoke an invitation", responses=problems(404, 409))
def revoke_invitation(invitation_id: InvitationId, caller: AdminCaller, db: DB) -> InvitationOut:
    """Withdraw a pending invitation (admins only); its link stops working. Anything but a pending
    invitation is a 409 conflict."""
    invitation = members.get_invitation(db, caller.organisation.id, invitation_id)
    members.revoke_invitation(db, invitation)
    db.commit()
    return InvitationOut.of(invitation)


@public_router.post(
    "/accept",
    summary="Accept an invitation",
    responses=problems(400, 404, 409, 413, 415, 422),
)
def accept_invitation(body: AcceptIn, db: DB) -> MemberOut:
    """Accept with the token from the invitation email; the membership becomes active.

    Needs no API token. An unknown token is a 404; a revoked, expired or accepted invitation a 409.
    """
    member = members.accept_invitation(db, body.token, display_name=body.display_name)
    db.commit()
    return MemberOut.model_validate(member)
