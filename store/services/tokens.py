"""API tokens: created with a secret shown once, looked up by its hash, revoked."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.errors import NotAllowed, NotFound
from store.models import ApiToken, Member, MemberStatus, Organisation, Role
from store.services.members import hash_secret

TOKEN_PREFIX = "dsk_"  # noqa: S105 - a marker, not a secret


def create(session: Session, member: Member, *, name: str = "") -> tuple[ApiToken, str]:
    """Issue a token; returns the row and the secret, which is never stored or shown again."""
    if member.status is MemberStatus.REMOVED:
        raise NotAllowed(f"{member.email} is removed and cannot hold a token")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        organisation_id=member.organisation_id,
        member_id=member.id,
        name=name.strip(),
        prefix=secret[:12],
        token_hash=hash_secret(secret),
    )
    session.add(token)
    session.flush()
    outbox.record(
        session,
        member.organisation_id,
        "api_token.created",
        {"token_id": token.id, "member_id": member.id, "prefix": token.prefix},
    )
    return token, secret


def get(session: Session, organisation_id: int, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or token.organisation_id != organisation_id:
        raise NotFound(f"no token {token_id}")
    return token


def revoke(session: Session, token: ApiToken) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = utcnow()
    outbox.record(
        session,
        token.organisation_id,
        "api_token.revoked",
        {"token_id": token.id, "member_id": token.member_id, "prefix": token.prefix},
    )


@dataclass(frozen=True)
class CallerMember:
    id: int
    email: str
    role: Role
    api_access: bool


@dataclass(frozen=True)
class CallerOrganisation:
    id: int
    timezone: str
    api_enabled: bool


@dataclass(frozen=True)
class Caller:
    """Who a token belongs to: plain values, read on every request, so no ORM objects to build.
    Routes that hand the member to a service load it (`members.get`)."""

    token_id: int
    member: CallerMember
    organisation: CallerOrganisation


# Built once: every API request runs it, and building a statement costs more than running it. Bound:
# `token_hash` (`hash_secret`); rows become callers with `caller_of`.
AUTHENTICATE = (
    select(
        ApiToken.id,
        Member.id,
        Member.email,
        Member.role,
        Member.api_access,
        Organisation.id,
        Organisation.timezone,
        Organisation.api_enabled,
    )
    .join(Member, Member.id == ApiToken.member_id)
    .join(Organisation, Organisation.id == ApiToken.organisation_id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        Member.status == MemberStatus.ACTIVE,
    )
)


def authenticate(session: Session, secret: str) -> Caller | None:
    """The caller behind `secret`, or None for an unknown or revoked token or a member who is not active.

    Reads only: callers note the use with `record_use`, in batches, so requests do not each write.
    """
    # On the session's connection: a plain statement of columns needs none of the ORM's execution.
    row = session.connection().execute(AUTHENTICATE, {"token_hash": hash_secret(secret)}).one_or_none()
    return None if row is None else caller_of(row)


def caller_of(row: Sequence[Any]) -> Caller:
    """The caller an `AUTHENTICATE` row describes."""
    token_id, member_id, email, role, api_access, organisation_id, timezone, api_enabled = row
    return Caller(
        token_id,
        CallerMember(member_id, email, role, api_access),
        CallerOrganisation(organisation_id, timezone, api_enabled),
    )


def record_use(session: Session, token_ids: Collection[int], at: datetime) -> None:
    """Note that these tokens were used at `at` (bookkeeping: no event)."""
    if token_ids:
        session.execute(update(ApiToken).where(ApiToken.id.in_(token_ids)).values(last_used_at=at))


def select_tokens(organisation_id: int, *, member_id: int | None = None) -> Select[ApiToken]:
    """The live (unrevoked) tokens of an organisation, or of one member in it, unordered."""
    query = select(ApiToken).where(ApiToken.organisation_id == organisation_id, ApiToken.revoked_at.is_(None))
    if member_id is not None:
        query = query.where(ApiToken.member_id == member_id)
    return query
