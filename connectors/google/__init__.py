"""Google Workspace: the Admin SDK Directory API read through a service account with domain-wide delegation."""

from connectors.google.auth import SCOPES
from connectors.google.channels import GoogleChannels
from connectors.google.directory import GoogleDirectory
from connectors.google.notifications import parse_notification, secret_matches
from connectors.google.service import DirectoryService, GoogleNotFound, GoogleSettings

__all__ = [
    "SCOPES",
    "DirectoryService",
    "GoogleChannels",
    "GoogleDirectory",
    "GoogleNotFound",
    "GoogleSettings",
    "parse_notification",
    "secret_matches",
]
