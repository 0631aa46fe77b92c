"""Manage users (admins): members with their role and API access, invitations, removal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.console.auth import Admin, AdminPosted
from api.console.pages import ConsoleRoute, done, render
from api.deps import DB
from api.v1.common import ResourceId
from store.columns import utcnow
from store.models import Invitation, InvitationStatus, Member, Role
from store.services import members

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)
USERS = "/console/admin/users"


@router.get("/users")
def users_page(request: Request, viewer: Admin, db: DB) -> HTMLResponse:
    """Everyone in the organisation, and the invitations still waiting for an answer."""
    people = list(db.scalars(members.select_members(viewer.organisation.id).order_by(Member.email)))
    pending = list(
        db.scalars(
            select(Invitation)
            .where(
                Invitation.organisation_id == viewer.organisation.id,
                Invitation.status == InvitationStatus.PENDING,
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at.desc())
        )
    )
    return render(request, "users.html", viewer, people=people, pending=pending, roles=list(Role))


@router.post("/users/invite")
def invite(
    request: Request,
    viewer: AdminPosted,
    db: DB,
    email: Annotated[str, Form(max_length=320)],
    display_name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[Role, Form()] = Role.MEMBER,
) -> Response:
    """Invite someone by email (the worker sends the invitation after the commit)."""
    invitation = members.invite(
        db,
        viewer.organisation.id,
        email,
        role=role,
        display_name=display_name,
        invited_by=viewer.member,
        source="console",
    )
    db.commit()
    return done(request, USERS, f"Invitation sent to {invitation.email}.")


@router.post("/users/{member_id}/api-access")
def set_api_access(
    request: Request, member_id: ResourceId, viewer: AdminPosted, db: DB, api_access: Annotated[bool, Form()] = False
) -> Response:
    """Grant or revoke API access (revoking ends the sessions signed in with the member's tokens)."""
    member = members.get(db, viewer.organisation.id, member_id)
    members.update(db, member, api_access=api_access)
    db.commit()
    return done(request, USERS, f"API access {'granted to' if api_access else 'revoked for'} {member.email}.")


@router.post("/users/{member_id}/role")
def set_role(
    request: Request, member_id: ResourceId, viewer: AdminPosted, db: DB, role: Annotated[Role, Form()]
) -> Response:
    """Make a member an admin or a member (the last admin stays one)."""
    member = members.get(db, viewer.organisation.id, member_id)
    members.update(db, member, role=role)
    db.commit()
    return done(request, USERS, f"{member.email} is now {'an admin' if role is Role.ADMIN else 'a member'}.")


@router.post("/users/{member_id}/remove")
def remove(request: Request, member_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Remove a member: their future bookings are cancelled, tokens revoked, sessions ended."""
    member = members.get(db, viewer.organisation.id, member_id)
    members.remove(db, member, reason="member_removed")
    db.commit()
    return done(request, USERS, f"{member.email} was removed.")


@router.post("/invitations/{invitation_id}/revoke")
def revoke_invitation(request: Request, invitation_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Withdraw a pending invitation."""
    invitation = members.get_invitation(db, viewer.organisation.id, invitation_id)
    members.revoke_invitation(db, invitation)
    db.commit()
    return done(request, USERS, f"The invitation of {invitation.email} was withdrawn.")
