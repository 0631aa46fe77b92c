"""Every table of the store, one module per entity."""

from store.models.api_token import ApiToken
from store.models.base import Base
from store.models.booking import LIVE_STATUSES, Booking, BookingStatus
from store.models.calendar import Calendar
from store.models.calendar_entry import CalendarEntry
from store.models.connection import Connection, ConnectionKind, ConnectionStatus
from store.models.console_session import ConsoleSession
from store.models.delivery import Delivery, DeliveryAttempt, DeliveryStatus
from store.models.desk import Desk
from store.models.directory_group import DirectoryGroup, DirectoryMembership
from store.models.directory_user import DirectoryUser
from store.models.external_event import ExternalEvent, ShowAs, WorkingLocation
from store.models.feed import Feed
from store.models.follow_up import FollowUp
from store.models.invitation import Invitation, InvitationStatus
from store.models.member import Member, MemberStatus, Role
from store.models.member_removal import MemberRemoval
from store.models.organisation import DirectoryPolicy, Organisation
from store.models.outbox_event import OutboxEvent
from store.models.peer_envelope import PeerEnvelope
from store.models.push_channel import PushChannel
from store.models.sign_in_link import SignInLink
from store.models.sync_plan import ConnectionRemoval, PlanStatus, SyncPlan
from store.models.team import Team, TeamMembership
from store.models.webhook_endpoint import EndpointKind, PayloadFormat, SignatureScheme, WebhookEndpoint

__all__ = [
    "LIVE_STATUSES",
    "ApiToken",
    "Base",
    "Booking",
    "BookingStatus",
    "Calendar",
    "CalendarEntry",
    "Connection",
    "ConnectionKind",
    "ConnectionRemoval",
    "ConnectionStatus",
    "ConsoleSession",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "Desk",
    "DirectoryGroup",
    "DirectoryMembership",
    "DirectoryPolicy",
    "DirectoryUser",
    "EndpointKind",
    "ExternalEvent",
    "Feed",
    "FollowUp",
    "Invitation",
    "InvitationStatus",
    "Member",
    "MemberRemoval",
    "MemberStatus",
    "Organisation",
    "OutboxEvent",
    "PayloadFormat",
    "PeerEnvelope",
    "PlanStatus",
    "PushChannel",
    "Role",
    "ShowAs",
    "SignInLink",
    "SignatureScheme",
    "SyncPlan",
    "Team",
    "TeamMembership",
    "WebhookEndpoint",
    "WorkingLocation",
]
