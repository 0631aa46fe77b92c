"""Every table of the store, one module per entity."""

from store.models.api_token import ApiToken
from store.models.base import Base
from store.models.booking import LIVE_STATUSES, Booking, BookingStatus
from store.models.desk import Desk
from store.models.external_identity import ExternalIdentity
from store.models.invitation import Invitation, InvitationStatus
from store.models.member import Member, MemberStatus, Role
from store.models.organisation import Organisation
from store.models.outbox_event import OutboxEvent
from store.models.team import Team, TeamMembership

__all__ = [
    "LIVE_STATUSES",
    "ApiToken",
    "Base",
    "Booking",
    "BookingStatus",
    "Desk",
    "ExternalIdentity",
    "Invitation",
    "InvitationStatus",
    "Member",
    "MemberStatus",
    "Organisation",
    "OutboxEvent",
    "Role",
    "Team",
    "TeamMembership",
]
