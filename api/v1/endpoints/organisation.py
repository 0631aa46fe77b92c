"""The caller's organisation and its settings."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from api.deps import DB, ApiCaller, admin_without_switch
from api.v1.common import PatchBody, Resource, Timestamp, problems
from store.services import organisations
from store.services.tokens import Caller

router = APIRouter(prefix="/organisation", tags=["organisation"])

DirectoryPolicyName = Literal["invite", "auto_accept"]
POLICY_HELP = (
    "What directory connections do with people new in scope: invite (an invitation email) or "
    "auto_accept (members at once, for organisations that sign in with SSO)."
)


class OrganisationOut(Resource):
    """The organisation the caller belongs to."""

    id: int
    name: str
    slug: str
    timezone: str = Field(description="IANA time zone, such as Europe/London: what 'today' means.")
    api_enabled: bool = Field(description="The API switch: while off, only this settings route answers.")
    directory_policy: DirectoryPolicyName = Field(description=POLICY_HELP)
    created_at: Timestamp
    updated_at: Timestamp


class OrganisationPatch(PatchBody):
    """The settings to change; leave a field out to keep it."""

    timezone: str | None = Field(default=None, max_length=64, description="An IANA time zone name.")
    api_enabled: bool | None = None
    directory_policy: DirectoryPolicyName | None = Field(default=None, description=POLICY_HELP)


@router.get("", summary="Get the organisation")
def get_organisation(caller: ApiCaller, db: DB) -> OrganisationOut:
    """The caller's organisation and its settings."""
    return OrganisationOut.model_validate(organisations.get(db, caller.organisation.id))


@router.patch("", summary="Change the organisation's settings", responses=problems(400, 413, 415, 422))
def update_organisation(
    body: OrganisationPatch, caller: Annotated[Caller, Depends(admin_without_switch)], db: DB
) -> OrganisationOut:
    """Change the time zone, turn the API on or off, or set the directory policy (admins only).

    This route answers admins even while the API is off, so that they can turn it on.
    """
    organisation = organisations.get(db, caller.organisation.id)
    organisations.update_settings(
        db,
        organisation,
        timezone=body.timezone,
        api_enabled=body.api_enabled,
        directory_policy=body.directory_policy,
    )
    db.commit()
    return OrganisationOut.model_validate(organisation)
