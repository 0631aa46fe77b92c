"""Google Workspace: the Admin SDK Directory API and people's calendars, through a service account with
domain-wide delegation."""

from connectors.google.auth import SCOPES
from connectors.google.calendar import GoogleCalendar
from connectors.google.calendar_channels import GoogleCalendarChannels
from connectors.google.calendar_service import CALENDAR_SCOPES, CalendarService, GoogleGone
from connectors.google.calendar_writer import GoogleCalendarWriter
from connectors.google.channels import GoogleChannels
from connectors.google.directory import GoogleDirectory
from connectors.google.notifications import parse_notification, secret_matches
from connectors.google.service import DirectoryService, GoogleNotFound, GoogleSettings

__all__ = [
    "CALENDAR_SCOPES",
    "SCOPES",
    "CalendarService",
    "DirectoryService",
    "GoogleCalendar",
    "GoogleCalendarChannels",
    "GoogleCalendarWriter",
    "GoogleChannels",
    "GoogleDirectory",
    "GoogleGone",
    "GoogleNotFound",
    "GoogleSettings",
    "parse_notification",
    "secret_matches",
]
