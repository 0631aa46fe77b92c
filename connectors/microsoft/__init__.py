"""Microsoft Entra ID (Azure AD) and Outlook calendars through Microsoft Graph: delta reads, writes, notifications.

Wiring, in the composition root::

    auth = GraphAuth(tenant_id, client_id, ClientSecret(secret))  # or ClientCertificate(pem, thumbprint)
    graph = GraphClient(auth)
    reader = MicrosoftDirectory(graph)          # a DirectoryReader
    subscriber = MicrosoftSubscriptions(graph)  # a PushSubscriber
    parse_notifications(body); secret_matches(stored, notification.secret)

    # one person's calendar (user: Graph id or userPrincipalName), permission Calendars.ReadWrite
    OutlookCalendar(graph, user)             # a CalendarReader
    OutlookCalendarWriter(graph, user)       # a CalendarWriter
    OutlookEventSubscriptions(graph, user)   # a PushSubscriber on the person's events
"""

from connectors.microsoft.auth import ClientCertificate, ClientSecret, Credential, GraphAuth
from connectors.microsoft.calendar import CalendarCursor, OutlookCalendar
from connectors.microsoft.calendar_push import OutlookEventSubscriptions
from connectors.microsoft.calendar_writer import OutlookCalendarWriter
from connectors.microsoft.directory import Cursor, MicrosoftDirectory
from connectors.microsoft.graph import GraphClient, GraphError
from connectors.microsoft.notifications import parse_notifications, secret_matches
from connectors.microsoft.subscriptions import MicrosoftSubscriptions

__all__ = [
    "CalendarCursor",
    "ClientCertificate",
    "ClientSecret",
    "Credential",
    "Cursor",
    "GraphAuth",
    "GraphClient",
    "GraphError",
    "MicrosoftDirectory",
    "MicrosoftSubscriptions",
    "OutlookCalendar",
    "OutlookCalendarWriter",
    "OutlookEventSubscriptions",
    "parse_notifications",
    "secret_matches",
]
