"""A person's CalDAV account: the server checked by the outbound guard, the client, and its calendars."""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error

from connectors.outbound import UnsafeURL, check_url
from connectors.records import ConnectorError

TIMEOUT = 30  # seconds per request
T = TypeVar("T")


def answered(value: T | Coroutine[Any, Any, T]) -> T:
    """What the library's synchronous client answered (its methods are typed for its async client too)."""
    if isinstance(value, Coroutine):
        value.close()
        raise TypeError("the caldav client answered asynchronously")
    return value


class CalDavAccount:
    """Where and as whom to reach a CalDAV server; `calendar` (a display name or URL) picks one, else every
    calendar that holds events (the first one is written into)."""

    def __init__(
        self, url: str, username: str, password: str, *, calendar: str | None = None, allow_private: bool = False
    ) -> None:
        self.url = url
        self._username = username
        self._password = password
        self._calendar = calendar
        self._allow_private = allow_private

    def __repr__(self) -> str:
        return f"CalDavAccount({self.url!r}, username={self._username!r}, password=***)"

    @contextmanager
    def calendars(self) -> Iterator[list[Calendar]]:
        """The account's event calendars, on a client closed afterwards; ConnectorError for an admin."""
        try:
            check_url(self.url, allow_private=self._allow_private, what="the CalDAV server address")
        except UnsafeURL as refused:
            raise ConnectorError(f"CalDAV server refused: {refused}", action_required=True) from None
        client = DAVClient(url=self.url, username=self._username, password=self._password, timeout=TIMEOUT)
        try:
            with translated_errors():
                principal = client.principal()  # type: ignore[no-untyped-call]
                found = [item for item in answered(principal.calendars()) if _holds_events(item)]
                if self._calendar:
                    found = [item for item in found if self._calendar in (item.get_display_name(), str(item.url))]
            if not found:
                raise ConnectorError(
                    "the CalDAV account has no calendar for events"
                    + (f" named {self._calendar!r}" if self._calendar else ""),
                    action_required=True,
                )
            yield found
        finally:
            client.close()


def _holds_events(calendar: Calendar) -> bool:
    try:
        return "VEVENT" in answered(calendar.get_supported_components())
    except (dav_error.DAVError, KeyError):
        return True  # a server that does not say: assume it does


@contextmanager
def translated_errors() -> Iterator[None]:
    """The library's errors as ConnectorError: refused sign-ins need an admin, the rest are retried."""
    try:
        yield
    except dav_error.AuthorizationError:
        raise ConnectorError(
            "the CalDAV server refused the username and password; enter them again", action_required=True
        ) from None
    except dav_error.NotFoundError as missing:
        raise ConnectorError(
            f"the CalDAV server has no such address ({_short(missing)})", action_required=True
        ) from None
    except (dav_error.DAVError, OSError) as failed:
        raise ConnectorError(f"the CalDAV server failed: {_short(failed)}") from None
    except Exception as failed:  # niquests' connection errors are not OSError
        if type(failed).__module__.startswith(("niquests", "urllib3")):
            raise ConnectorError(f"the CalDAV server could not be reached: {type(failed).__name__}") from None
        raise


def _short(value: Any) -> str:
    return str(value)[:200]
