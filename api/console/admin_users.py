"""Manage users (admins): members with their role and API access, invitations, removal and restore."""

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
from store.models import Booking, Desk, Invitation, InvitationStatus, Member, MemberStatus, Role
from store.services import members, removals, restores

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
    now = utcnow()
    undo_until = {}  # removed members who can be restored now: until when
    for person in people:
        if person.status is MemberStatus.REMOVED:
            removal = restores.undoable(db, person, now)
            if removal is not None:
                undo_until[person.id] = removals.undo_ends(removal, viewer.organisation)
    return render(
        request, "users.html", viewer, people=people, pending=pending, roles=list(Role), undo_until=undo_until
    )


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


@router.post("/users/{member_id}/restore")
def restore(request: Request, member_id: ResourceId, viewer: AdminPosted, db: DB) -> HTMLResponse:
    """Undo a member's last removal, as POST /v1/members/{id}/restore does: the page lists what came
    back, what could not and why, and the new tokens' secrets (shown this once)."""
    member = members.get(db, viewer.organisation.id, member_id)
    done = restores.restore(db, member, source="console")
    db.commit()
    # Bookings that did not come back are shown as bookings are (times in the organisation's zone, the desk's
    # label), rather than by the detail's UTC wording.
    missed = [item.id for item in done.unrestored if item.kind == "booking"]
    kept = {row.id: row for row in db.scalars(select(Booking).where(Booking.id.in_(missed)))} if missed else {}
    desk_ids = {row.desk_id for row in [*done.bookings, *kept.values()] if row.desk_id is not None}
    labels = {desk_id: label for desk_id, label in db.execute(select(Desk.id, Desk.label).where(Desk.id.in_(desk_ids)))}
    return render(
        request,
        "restored.html",
        viewer,
        done=done,
        missed_bookings=kept,
        desks=labels,
        reasons=restores.REASONS,
        no_store=bool(done.tokens),
    )
