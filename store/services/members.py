"""Membership: inviting, accepting, adding, updating and removing people."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select, text
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.errors import Conflict, Invalid, NotAllowed, NotFound
from store.models import (
    LIVE_STATUSES,
    ApiToken,
    Booking,
    Invitation,
    InvitationStatus,
    Member,
    MemberStatus,
    Organisation,
    Role,
)
from store.services import bookings as booking_service
from store.services import removals
from store.sql import among

INVITATION_LIFETIME = timedelta(days=14)


def normalise_email(email: str) -> str:
    """Addresses are compared without case and surrounding space."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 320:
        raise Invalid(f"{email!r} is not an email address", field="email")
    return email


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret: enough to look it up, useless to a thief."""
    return hashlib.sha256(secret.encode()).hexdigest()


def get(session: Session, organisation_id: int, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.organisation_id != organisation_id:
        raise NotFound(f"no member {member_id}")
    return member


def find_by_email(session: Session, organisation_id: int, email: str) -> Member | None:
    return session.scalar(
        select(Member).where(Member.organisation_id == organisation_id, Member.email == normalise_email(email))
    )


def get_by_email(session: Session, organisation_id: int, email: str) -> Member:
    member = find_by_email(session, organisation_id, email)
    if member is None:
        raise NotFound(f"no member with email {email.strip().lower()!r}", field="email")
    return member


def _describe(member: Member) -> dict[str, Any]:
    return {"member_id": member.id, "email": member.email, "role": member.role, "status": member.status}


def invite(
    session: Session,
    organisation_id: int,
    email: str,
    *,
    role: Role = Role.MEMBER,
    display_name: str = "",
    invited_by: Member | None = None,
    source: str = "api",
) -> Invitation:
    """Invite someone; the email with the accept link is the worker's job (see `issue_invitation_token`).

    Inviting an invited person again replaces their pending invitation; inviting someone who was
    removed brings them back as invited. Either way the new role applies (a former admin invited
    as a member comes back as a member). Inviting an active member is a conflict. The same
    invitation again while the first one's email has not gone out yet is that invitation: nothing
    changes, so a burst of identical requests makes one invitation, one email and one event.

    One pending invitation per address is kept by a unique index; a re-invite replaces only the
    invitation it read, so a concurrent one that replaced it first makes this one a conflict.
    """
    email = normalise_email(email)
    member = find_by_email(session, organisation_id, email)
    if member is not None and member.status is MemberStatus.ACTIVE:
        raise Conflict(f"{email} is already a member", code="already_member", field="email")
    now = utcnow()
    if member is None:
        member = Member(organisation_id=organisation_id, email=email, display_name=display_name.strip(), role=role)
        session.add(member)
    else:
        mine = select(Invitation).where(Invitation.member_id == member.id)
        pending = list(session.scalars(mine.where(Invitation.status == InvitationStatus.PENDING)))
        waiting = _same_invitation_waiting(member, pending, role, display_name.strip(), now)
        if waiting is not None:
            return waiting
        member.status = MemberStatus.INVITED
        member.role = role
        member.display_name = display_name.strip() or member.display_name
        member.removed_at = None
        _replace_pending_invitations(session, [invitation.id for invitation in pending], now)
    session.flush()
    invitation = Invitation(
        organisation_id=organisation_id,
        member_id=member.id,
        email=email,
        source=source,
        invited_by_id=invited_by.id if invited_by else None,
        expires_at=now + INVITATION_LIFETIME,
    )
    session.add(invitation)
    session.flush()
    outbox.record(
        session,
        organisation_id,
        "membership.invited",
        {**_describe(member), "invitation_id": invitation.id, "source": source},
    )
    return invitation


def load(session: Session, member_ids: Sequence[int]) -> None:
    """Fetch these members into the session in one query, so `session.get` finds them without one each."""
    if member_ids:
        session.scalars(select(Member).where(among(session, Member.id, member_ids))).all()


def find_by_emails(session: Session, organisation_id: int, emails: Sequence[str]) -> dict[str, Member]:
    """The members with these (normalised) addresses, by address, in one query."""
    if not emails:
        return {}
    found = session.scalars(
        select(Member).where(Member.organisation_id == organisation_id, among(session, Member.email, emails))
    )
    return {member.email: member for member in found}


# On PostgreSQL, newcomers go in with one statement a table, an array a column: short statements
# the driver parses once, whatever the number of rows (a multi-row VALUES list of 1,000 rows is
# parsed again for every chunk, and costs more than the insert itself).
_INSERT_MEMBERS = text(
    """
    INSERT INTO members (organisation_id, email, display_name, role, status, api_access, created_at, updated_at)
    SELECT :organisation_id, email, display_name, :role, :status, false, :now, :now
    FROM unnest(CAST(:emails AS varchar[]), CAST(:display_names AS varchar[])) AS new (email, display_name)
    RETURNING id, email
    """
)
_INSERT_INVITATIONS = text(
    """
    INSERT INTO invitations (organisation_id, member_id, email, status, source, expires_at, created_at, updated_at)
    SELECT :organisation_id, member_id, email, :status, :source, :expires_at, :now, :now
    FROM unnest(CAST(:member_ids AS integer[]), CAST(:emails AS varchar[])) AS new (member_id, email)
    RETURNING id, email
    """
)


def bring_in_many(
    session: Session,
    organisation_id: int,
    people: Sequence[tuple[str, str]],
    *,
    active: bool,
    source: str,
) -> dict[str, int]:
    """Invite (or, `active`, add) many people who are not members at all yet, in a few statements.

    `people` are (normalised address, display name) pairs; the caller has checked that none of the
    addresses has a member (a directory's first sync brings in thousands at once). Records the same
    events as `invite`/`add` one by one. Returns each address's new member id.
    """
    if not people:
        return {}
    now = utcnow()
    status = MemberStatus.ACTIVE if active else MemberStatus.INVITED
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        rows = session.execute(
            _INSERT_MEMBERS,
            {
                "organisation_id": organisation_id,
                "role": Role.MEMBER.value,
                "status": status.value,
                "now": now,
                "emails": [email for email, _ in people],
                "display_names": [name.strip() for _, name in people],
            },
        ).all()
    else:
        rows = session.execute(
            insert(Member).returning(Member.id, Member.email, sort_by_parameter_order=True),
            [
                {
                    "organisation_id": organisation_id,
                    "email": email,
                    "display_name": name.strip(),
                    "role": Role.MEMBER,
                    "status": status,
                    "api_access": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for email, name in people
            ],
        ).all()
    # Matched by address (unique in the organisation), so the order rows come back in does not matter.
    ids = {email: member_id for member_id, email in rows}
    described = {"role": Role.MEMBER, "status": status}
    if active:
        for email, _ in people:
            data = {"member_id": ids[email], "email": email, **described, "source": source}
            outbox.record(session, organisation_id, "membership.added", data)
        return ids
    expires_at = now + INVITATION_LIFETIME
    if postgresql:
        invitations = session.execute(
            _INSERT_INVITATIONS,
            {
                "organisation_id": organisation_id,
                "status": InvitationStatus.PENDING.value,
                "source": source,
                "expires_at": expires_at,
                "now": now,
                "member_ids": [ids[email] for email, _ in people],
                "emails": [email for email, _ in people],
            },
        ).all()
    else:
        invitations = session.execute(
            insert(Invitation).returning(Invitation.id, Invitation.email, sort_by_parameter_order=True),
            [
                {
                    "organisation_id": organisation_id,
                    "member_id": ids[email],
                    "email": email,
                    "status": InvitationStatus.PENDING,
                    "source": source,
                    "expires_at": expires_at,
                    "created_at": now,
                    "updated_at": now,
                }
                for email, _ in people
            ],
        ).all()
    invitation_ids = {email: invitation_id for invitation_id, email in invitations}
    # Events in the order people were given, whatever order the rows came back in.
    for email, _ in people:
        data = {
            "member_id": ids[email],
            "email": email,
            **described,
            "invitation_id": invitation_ids[email],
            "source": source,
        }
        outbox.record(session, organisation_id, "membership.invited", data)
    return ids


def issue_invitation_token(session: Session, invitation: Invitation) -> str | None:
    """A fresh accept token for a pending invitation about to be mailed, or None if it needs no mail.

    Issuing again replaces the previous token, so only the link in the latest email works.
    """
    if invitation_status(invitation) is not InvitationStatus.PENDING or invitation.sent_at is not None:
        return None
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_secret(token)
    return token


def mark_invitation_sent(session: Session, invitation: Invitation) -> None:
    """Note that the invitation email went out, so a redelivered job does not send it twice."""
    invitation.sent_at = utcnow()


def add(
    session: Session,
    organisation_id: int,
    email: str,
    *,
    role: Role = Role.MEMBER,
    display_name: str = "",
    api_access: bool = False,
    source: str = "cli",
) -> Member:
    """Make someone an active member at once (no invitation), or restore a removed one."""
    email = normalise_email(email)
    member = find_by_email(session, organisation_id, email)
    if member is not None and member.status is MemberStatus.ACTIVE:
        raise Conflict(f"{email} is already a member", code="already_member", field="email")
    if member is None:
        member = Member(organisation_id=organisation_id, email=email)
        session.add(member)
    else:
        _revoke_pending_invitations(session, member, utcnow())
    member.display_name = display_name.strip() or member.display_name
    member.role = role
    member.api_access = api_access
    member.status = MemberStatus.ACTIVE
    member.removed_at = None
    session.flush()
    outbox.record(session, organisation_id, "membership.added", {**_describe(member), "source": source})
    return member


def _same_invitation_waiting(
    member: Member, pending: list[Invitation], role: Role, display_name: str, now: datetime
) -> Invitation | None:
    """The member's pending invitation when inviting them again would change nothing: same role and
    name, not expired, and its email not sent yet (a sent one is replaced, so the email goes again)."""
    if member.status is not MemberStatus.INVITED or member.role is not role:
        return None
    if display_name and display_name != member.display_name:
        return None
    return next((i for i in pending if i.sent_at is None and i.expires_at > now), None)


def _replace_pending_invitations(session: Session, invitation_ids: list[int], now: datetime) -> None:
    """Revoke the pending invitations read before (and only those): if a concurrent request revoked
    one first, it is inviting the same person now, and this request is the conflict."""
    if not invitation_ids:
        return
    revoked = session.execute(
        sql_update(Invitation)
        .where(Invitation.id.in_(invitation_ids), Invitation.status == InvitationStatus.PENDING)
        .values(status=InvitationStatus.REVOKED, revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if revoked.rowcount != len(invitation_ids):  # type: ignore[attr-defined]
        raise Conflict("A concurrent request is inviting this address; retry.", code="conflict", field="email")


def _revoke_pending_invitations(session: Session, member: Member, now: datetime) -> None:
    session.execute(
        sql_update(Invitation)
        .where(Invitation.member_id == member.id, Invitation.status == InvitationStatus.PENDING)
        .values(status=InvitationStatus.REVOKED, revoked_at=now)
    )


def get_invitation(session: Session, organisation_id: int, invitation_id: int) -> Invitation:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.organisation_id != organisation_id:
        raise NotFound(f"no invitation {invitation_id}")
    return invitation


def invitation_status(invitation: Invitation, now: datetime | None = None) -> InvitationStatus:
    """The status as a reader should see it: a pending invitation past its date is expired."""
    if invitation.status is InvitationStatus.PENDING and invitation.expires_at <= (now or utcnow()):
        return InvitationStatus.EXPIRED
    return invitation.status


def accept_invitation(session: Session, token: str, *, display_name: str = "") -> Member:
    """Accept by token: the member becomes active."""
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == hash_secret(token)))
    if invitation is None:
        raise NotFound("this invitation link is not valid")
    now = utcnow()
    status = invitation_status(invitation, now)
    if status is not InvitationStatus.PENDING:
        raise NotAllowed(f"this invitation is {status.value}")
    member = session.get_one(Member, invitation.member_id)
    invitation.status = InvitationStatus.ACCEPTED
    invitation.accepted_at = now
    member.status = MemberStatus.ACTIVE
    if display_name.strip():
        member.display_name = display_name.strip()
    outbox.record(
        session,
        member.organisation_id,
        "membership.accepted",
        {**_describe(member), "invitation_id": invitation.id},
    )
    return member


def revoke_invitation(session: Session, invitation: Invitation) -> Invitation:
    """Withdraw a pending invitation; someone who never joined is left removed."""
    if invitation_status(invitation) is not InvitationStatus.PENDING:
        raise NotAllowed(f"only a pending invitation can be revoked; this one is {invitation_status(invitation)}")
    now = utcnow()
    invitation.status = InvitationStatus.REVOKED
    invitation.revoked_at = now
    member = session.get_one(Member, invitation.member_id)
    if member.status is MemberStatus.INVITED:
        member.status = MemberStatus.REMOVED
        member.removed_at = now
    outbox.record(
        session,
        invitation.organisation_id,
        "invitation.revoked",
        {"invitation_id": invitation.id, "member_id": member.id, "email": invitation.email},
    )
    return invitation


def update(
    session: Session,
    member: Member,
    *,
    display_name: str | None = None,
    role: Role | None = None,
    api_access: bool | None = None,
    email: str | None = None,
) -> Member:
    """Change a member's name, address, role or API access; records `member.updated` with what changed."""
    changes: dict[str, Any] = {}
    if display_name is not None and display_name.strip() != member.display_name:
        member.display_name = changes["display_name"] = display_name.strip()
    if email is not None and normalise_email(email) != member.email:
        email = normalise_email(email)
        if find_by_email(session, member.organisation_id, email) is not None:
            raise Conflict(f"{email} belongs to another member", code="email_taken", field="email")
        member.email = changes["email"] = email
    if role is not None and role is not member.role:
        was_admin = member.role is Role.ADMIN
        member.role = changes["role"] = role
        if was_admin:
            _keep_an_admin(session, member)
    if api_access is not None and api_access != member.api_access:
        member.api_access = changes["api_access"] = api_access
    if changes:
        outbox.record(
            session,
            member.organisation_id,
            "member.updated",
            {"member_id": member.id, "email": member.email, "changes": changes},
        )
    return member


def _keep_an_admin(session: Session, leaving: Member) -> None:
    """Refuse a change that leaves the organisation without an active admin.

    Called after the change is made: the rows are written first and the organisation is locked
    last, the order the outbox also takes at commit, so two admins demoting each other at once
    queue up instead of both passing, and no transaction waits for a lock another one holds.
    """
    session.flush()
    session.execute(select(Organisation.id).where(Organisation.id == leaving.organisation_id).with_for_update())
    admins = session.scalar(
        select(func.count()).where(
            Member.organisation_id == leaving.organisation_id,
            Member.role == Role.ADMIN,
            Member.status == MemberStatus.ACTIVE,
            Member.id != leaving.id,
        )
    )
    if not admins:
        raise Conflict("an organisation must keep at least one active admin", code="last_admin")


def _is_active_admin_of(organisation_id: int) -> ColumnElement[bool]:
    return and_(
        Member.organisation_id == organisation_id,
        Member.role == Role.ADMIN,
        Member.status == MemberStatus.ACTIVE,
    )


def active_admins(session: Session, organisation_id: int) -> int:
    """How many active admins the organisation has (a directory's plan keeps the last one)."""
    return session.scalar(select(func.count()).where(_is_active_admin_of(organisation_id))) or 0


def admins_to_tell(session: Session, organisation_id: int) -> Sequence[Member]:
    """The organisation's active admins in a stable order: whom its emails about a connection or a
    webhook endpoint go to."""
    return session.scalars(select(Member).where(_is_active_admin_of(organisation_id)).order_by(Member.id)).all()


def remove(session: Session, member: Member, *, reason: str = "member_removed") -> bool:
    """Remove a membership: history stays, live bookings that have not ended are cancelled (one
    `booking.cancelled` each), API tokens and pending invitations are revoked.

    Returns False, changing nothing, when the member was already removed.
    """
    if member.status is MemberStatus.REMOVED:
        return False
    was_active_admin = member.role is Role.ADMIN and member.status is MemberStatus.ACTIVE
    now = utcnow()
    bookings = session.scalars(
        select(Booking)
        .where(Booking.member_id == member.id, Booking.status.in_(LIVE_STATUSES), Booking.end_at > now)
        .order_by(Booking.start_at)
    ).all()
    revoked = _revoke_tokens(session, [member.id], now)
    removals.record(
        session, [member], reason=reason, now=now, booking_ids={member.id: [b.id for b in bookings]}, token_ids=revoked
    )
    for booking in bookings:
        booking_service.cancel(session, booking, reason=reason, now=now)
    _revoke_pending_invitations(session, member, now)
    member.status = MemberStatus.REMOVED
    member.removed_at = now
    if was_active_admin:
        _keep_an_admin(session, member)
    outbox.record(
        session,
        member.organisation_id,
        "membership.removed",
        {**_describe(member), "reason": reason, "cancelled_bookings": len(bookings)},
    )
    return True


def remove_many(session: Session, leaving: Sequence[Member], *, reason: str = "member_removed") -> list[Member]:
    """Remove many memberships as `remove` does one by one, in a few statements (a directory's round
    may offboard hundreds): live bookings that have not ended are cancelled (one `booking.cancelled`
    each), API tokens and pending invitations are revoked, one `membership.removed` each.

    Members already removed are left out (as `remove` changes nothing for them). Active admins must
    go through `remove`, whose last-admin check may refuse. Returns the members removed.
    """
    if any(member.role is Role.ADMIN and member.status is MemberStatus.ACTIVE for member in leaving):
        raise ValueError("active admins are removed one by one (remove), for the last-admin check")
    chosen = [member for member in dict.fromkeys(leaving) if member.status is not MemberStatus.REMOVED]
    if not chosen:
        return []
    now = utcnow()
    ids = [member.id for member in chosen]
    bookings: dict[int, list[Booking]] = {member_id: [] for member_id in ids}
    for booking in session.scalars(
        select(Booking)
        .where(among(session, Booking.member_id, ids), Booking.status.in_(LIVE_STATUSES), Booking.end_at > now)
        .order_by(Booking.start_at)
    ):
        bookings[booking.member_id].append(booking)
    revoked = _revoke_tokens(session, ids, now)
    removals.record(
        session,
        chosen,
        reason=reason,
        now=now,
        booking_ids={member_id: [booking.id for booking in held] for member_id, held in bookings.items()},
        token_ids=revoked,
    )
    session.execute(
        sql_update(Invitation)
        .where(among(session, Invitation.member_id, ids), Invitation.status == InvitationStatus.PENDING)
        .values(status=InvitationStatus.REVOKED, revoked_at=now),
        execution_options={"synchronize_session": "fetch"},
    )
    for member in chosen:  # events member by member, in the order `remove` would record them
        for booking in bookings[member.id]:
            booking_service.cancel(session, booking, reason=reason, now=now)
        member.status = MemberStatus.REMOVED
        member.removed_at = now
        outbox.record(
            session,
            member.organisation_id,
            "membership.removed",
            {**_describe(member), "reason": reason, "cancelled_bookings": len(bookings[member.id])},
        )
    return chosen


def _revoke_tokens(session: Session, member_ids: Sequence[int], now: datetime) -> dict[int, list[int]]:
    """Revoke the members' live API tokens; returns the ids revoked, by member (for the removal's record)."""
    revoked: dict[int, list[int]] = {}
    for token_id, member_id in session.execute(
        sql_update(ApiToken)
        .where(among(session, ApiToken.member_id, member_ids), ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(ApiToken.id, ApiToken.member_id),
        execution_options={"synchronize_session": "fetch"},
    ):
        revoked.setdefault(member_id, []).append(token_id)
    for ids in revoked.values():
        ids.sort()
    return revoked


def select_members(
    organisation_id: int,
    *,
    status: MemberStatus | None = None,
    role: Role | None = None,
    email: str | None = None,
) -> Select[Member]:
    """The members of an organisation, narrowed by status, role and address (any case), unordered."""
    query = select(Member).where(Member.organisation_id == organisation_id)
    if status is not None:
        query = query.where(Member.status == status)
    if role is not None:
        query = query.where(Member.role == role)
    if email is not None:
        query = query.where(Member.email == email.strip().lower())
    return query


def select_invitations(
    organisation_id: int, *, status: InvitationStatus | None = None, now: datetime | None = None
) -> Select[Invitation]:
    """The invitations of an organisation, unordered; `status` as `invitation_status` reports it."""
    query = select(Invitation).where(Invitation.organisation_id == organisation_id)
    now = now or utcnow()
    if status is InvitationStatus.PENDING:
        query = query.where(Invitation.status == InvitationStatus.PENDING, Invitation.expires_at > now)
    elif status is InvitationStatus.EXPIRED:
        query = query.where(
            or_(
                Invitation.status == InvitationStatus.EXPIRED,
                and_(Invitation.status == InvitationStatus.PENDING, Invitation.expires_at <= now),
            )
        )
    elif status is not None:
        query = query.where(Invitation.status == status)
    return query


def unsent_invitations(session: Session, *, made_before: datetime) -> list[int]:
    """Pending invitations made before `made_before` whose email never went out (their job was lost)."""
    return list(
        session.scalars(
            select(Invitation.id)
            .where(
                Invitation.status == InvitationStatus.PENDING,
                Invitation.sent_at.is_(None),
                Invitation.created_at < made_before,
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.id)
        )
    )
