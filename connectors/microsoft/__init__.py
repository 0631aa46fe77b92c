"""Microsoft Entra ID (Azure AD) through Microsoft Graph: directory delta reads and change notifications.

Wiring, in the composition root::

    auth = GraphAuth(tenant_id, client_id, ClientSecret(secret))  # or ClientCertificate(pem, thumbprint)
    graph = GraphClient(auth)
    reader = MicrosoftDirectory(graph)          # a DirectoryReader
    subscriber = MicrosoftSubscriptions(graph)  # a PushSubscriber
    parse_notifications(body); secret_matches(stored, notification.secret)
"""

from connectors.microsoft.auth import ClientCertificate, ClientSecret, Credential, GraphAuth
from connectors.microsoft.directory import Cursor, MicrosoftDirectory
from connectors.microsoft.graph import GraphClient, GraphError
from connectors.microsoft.notifications import parse_notifications, secret_matches
from connectors.microsoft.subscriptions import MicrosoftSubscriptions

__all__ = [
    "ClientCertificate",
    "ClientSecret",
    "Credential",
    "Cursor",
    "GraphAuth",
    "GraphClient",
    "GraphError",
    "MicrosoftDirectory",
    "MicrosoftSubscriptions",
    "parse_notifications",
    "secret_matches",
]
