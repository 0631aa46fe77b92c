"""The caller's organisation and its settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.orm import Session

from api.context import ApiContext
from api.deps import DB, ApiCaller, admin_without_switch, context
from api.v1.common import PatchBody, RequestBody, Resource, Timestamp, problems
from store.models import Organisation
from store.services import follow_ups, organisations, removals
from store.services.tokens import Caller
from sync.calendar import rules

router = APIRouter(prefix="/organisation", tags=["organisation"])

DirectoryPolicyName = Literal["invite", "auto_accept"]
POLICY_HELP = (
    "What directory connections do with people new in scope: invite (an invitation email) or "
    "auto_accept (members at once, for organisations that sign in with SSO)."
)
BUSY_ONLY_HELP = (
    "Keep only when people are busy: calendar events are stored without titles, locations, "
    "attendees or categories (turning it on also blanks those of events already stored)."
)
WINDOW_HELP = "How many days ahead calendars are read (from one day back)."
RULES_HELP = "Which Outlook and ICS events are office days (Google working locations always are)."
UNDO_HELP = (
    "How many days after a removal the member can be restored as they were (POST /v1/members/{id}/restore, "
    "or by reappearing in a directory); 0: removals cannot be undone."
)
ABSENCE_HELP = (
    "A calendar entry or peer-platform time off that says a person is out of office for whole days cancels "
    "their bookings within those days (reason out_of_office), for absences read from then on. Off by default."
)


class OfficeRulesOut(BaseModel):
    """Which calendar events become bookings; any rule that matches makes an office day."""

    categories: list[str] = Field(default_factory=list, description='Event categories, such as "Office".')
    keywords: list[str] = Field(default_factory=list, description='Words in the subject, such as "WFO".')
    working_elsewhere_with_location: bool = Field(
        default=False, description="Show-as workingElsewhere with a location (the office or desk)."
    )


Words = Annotated[list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=50)]


class OfficeRulesIn(RequestBody):
    """The office-day rules; a rule left out is off. Case does not matter."""

    categories: Words = Field(default_factory=list, description='Event categories, such as "Office".')
    keywords: Words = Field(default_factory=list, description='Words in the subject, such as "WFO".')
    working_elsewhere_with_location: bool = Field(
        default=False, description="Show-as workingElsewhere with a location (the office or desk)."
    )


class OrganisationOut(Resource):
    """The organisation the caller belongs to."""

    id: int
    name: str
    slug: str
    timezone: str = Field(description="IANA time zone, such as Europe/London: what 'today' means.")
    api_enabled: bool = Field(description="The API switch: while off, only this settings route answers.")
    directory_policy: DirectoryPolicyName = Field(description=POLICY_HELP)
    calendar_busy_only: bool = Field(description=BUSY_ONLY_HELP)
    calendar_window_days: int = Field(description=WINDOW_HELP)
    office_rules: OfficeRulesOut = Field(description=RULES_HELP)
    offboarding_undo_days: int = Field(description=UNDO_HELP)
    release_on_absence: bool = Field(description=ABSENCE_HELP)
    created_at: Timestamp
    updated_at: Timestamp


class OrganisationPatch(PatchBody):
    """The settings to change; leave a field out to keep it."""

    timezone: str | None = Field(default=None, max_length=64, description="An IANA time zone name.")
    api_enabled: bool | None = None
    directory_policy: DirectoryPolicyName | None = Field(default=None, description=POLICY_HELP)
    calendar_busy_only: bool | None = Field(default=None, description=BUSY_ONLY_HELP)
    calendar_window_days: int | None = Field(
        default=None, ge=organisations.MIN_WINDOW_DAYS, le=organisations.MAX_WINDOW_DAYS, description=WINDOW_HELP
    )
    office_rules: OfficeRulesIn | None = Field(default=None, description=RULES_HELP + " Replaces the rules.")
    offboarding_undo_days: int | None = Field(
        default=None, ge=removals.MIN_UNDO_DAYS, le=removals.MAX_UNDO_DAYS, description=UNDO_HELP
    )
    release_on_absence: bool | None = Field(default=None, description=ABSENCE_HELP)


def _clean_rules(body: OfficeRulesIn | None) -> dict[str, Any] | None:
    # The rules' own check trims and refuses blank words: the same one the worker trusts.
    return None if body is None else rules.validate(body.model_dump())


@router.get("", summary="Get the organisation")
def get_organisation(caller: ApiCaller, db: DB) -> OrganisationOut:
    """The caller's organisation and its settings."""
    return OrganisationOut.model_validate(organisations.get(db, caller.organisation.id))


@router.patch("", summary="Change the organisation's settings", responses=problems(400, 413, 415, 422))
def update_organisation(
    body: OrganisationPatch,
    caller: Annotated[Caller, Depends(admin_without_switch)],
    db: DB,
    ctx: Annotated[ApiContext, Depends(context)],
) -> OrganisationOut:
    """Change the time zone, turn the API on or off, set the directory policy, the calendar settings
    (privacy, window, office-day rules) or how long removals can be undone (admins only).

    This route answers admins even while the API is off, so that they can turn it on. Calendar
    events already stored follow a change of the calendar settings shortly after (a job): office
    days are judged again by new rules (bookings made or cancelled), a wider window is read, details
    come back when the privacy setting is turned off (they are blanked at once when it is turned on).
    """
    organisation = organisations.get(db, caller.organisation.id)
    apply_settings(db, ctx, organisation, body)
    return OrganisationOut.model_validate(organisation)


def apply_settings(db: Session, ctx: ApiContext, organisation: Organisation, body: OrganisationPatch) -> None:
    """Change the settings `body` names and commit; then hand the calendar settings that changed (by
    meaning: rules that read alike are alike) to the calendar worker. The API's PATCH and the
    console's form both call this."""
    before = _calendar_settings(organisation)
    organisations.update_settings(
        db,
        organisation,
        timezone=body.timezone,
        api_enabled=body.api_enabled,
        directory_policy=body.directory_policy,
        calendar_busy_only=body.calendar_busy_only,
        calendar_window_days=body.calendar_window_days,
        office_rules=_clean_rules(body.office_rules),
        offboarding_undo_days=body.offboarding_undo_days,
        release_on_absence=body.release_on_absence,
    )
    after = _calendar_settings(organisation)
    db.commit()
    changed = [name for name in CALENDAR_SETTINGS if before[name] != after[name]]
    if changed:
        ctx.jobs.reevaluate_calendars(organisation.id, changed)


# The settings whose change asks the calendar worker to bring stored events in line (worker.calendar.reevaluate),
# each also the follow-up its change owes.
CALENDAR_SETTINGS = follow_ups.CALENDAR_SETTINGS


def _calendar_settings(organisation: Organisation) -> dict[str, object]:
    """The settings as the calendar worker reads them (rules that read alike are alike: `{}` and all off)."""
    found: dict[str, object] = {name: getattr(organisation, name) for name in CALENDAR_SETTINGS}
    found["office_rules"] = rules.OfficeRules.from_settings(organisation.office_rules)
    return found
