"""A fake Microsoft identity platform and Microsoft Graph (directory and calendar delta, events, subscriptions)."""

from tests.fakes.graph.calendars import Calendars
from tests.fakes.graph.directory import Directory
from tests.fakes.graph.identity import App, Identity
from tests.fakes.graph.receiver import NotificationReceiver
from tests.fakes.graph.server import FakeGraph

__all__ = ["App", "Calendars", "Directory", "FakeGraph", "Identity", "NotificationReceiver"]
