"""A fake Microsoft identity platform and Microsoft Graph (directory delta, subscriptions, notifications)."""

from tests.fakes.graph.directory import Directory
from tests.fakes.graph.identity import App, Identity
from tests.fakes.graph.receiver import NotificationReceiver
from tests.fakes.graph.server import FakeGraph

__all__ = ["App", "Directory", "FakeGraph", "Identity", "NotificationReceiver"]
