"""The Calendar API v3 client for one person's calendar: delegated credentials acting as that person.

A person's primary calendar is read and written as the person: the service account signs a JWT with
the person's address as `sub` (domain-wide delegation, like the directory acting as an admin). The
one scope asked for is `calendar.events.owned` ("see, create, change and delete events on calendars
you own"): the narrowest scope every method we call accepts (events list/get/insert/update/delete/
watch and channels.stop, per the bundled discovery document), since a primary calendar is always
its person's own. `calendar.events` works as well where an admin has already authorised it.

The service is the directory's `DirectoryService` with the Calendar API's discovery document
(bundled, `static_discovery=True`: no fetch), the person as subject, and admin-facing messages that
name the calendar scope. Retries, throttling and timeouts are the directory's `call`.
"""

from __future__ import annotations

import functools
from typing import Any

import httplib2  # type: ignore[import-untyped]
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account
from googleapiclient.discovery import build  # type: ignore[import-untyped]

from connectors.google.auth import _oauth_error_code, delegated_credentials, delegation_help
from connectors.google.errors import GoogleError
from connectors.google.service import GOOGLE_API, DirectoryService, GoogleNotFound, GoogleSettings
from connectors.records import ConnectorError

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events.owned"
CALENDAR_EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
CALENDAR_SCOPES = (CALENDAR_SCOPE,)
# The Calendar API lives on www.googleapis.com, not on the Admin SDK's host the settings default to.
CALENDAR_API = "https://www.googleapis.com/"


class GoogleGone(ConnectorError):
    """Google answered 410: a sync token that expired (`fullSyncRequired`), an event already deleted."""

    def __init__(self, message: str, *, reason: str | None) -> None:
        super().__init__(message)
        self.reason = reason


class GoogleInvalid(ConnectorError):
    """Google answered 400: the request is one it does not accept (e.g. a working location where it is off)."""

    def __init__(self, message: str, *, reason: str | None) -> None:
        super().__init__(message)
        self.reason = reason


class GoogleConflict(ConnectorError):
    """Google answered 409: an event with the id we chose exists already (possibly deleted)."""


@functools.lru_cache(maxsize=8)
def _resource(endpoint: str) -> Any:
    # The discovery-built service, once a process per endpoint (building it from the bundled document
    # costs more than a sync's request). It is built on an HTTP client without credentials and never
    # sends with it: `call` executes every request with its person's own authorised HTTP.
    return build(
        "calendar",
        "v3",
        http=httplib2.Http(),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": endpoint},
    )


@functools.lru_cache(maxsize=8)
def _events(endpoint: str) -> Any:
    # googleapiclient makes a new collection object on every `events()`, methods and docs included.
    return _resource(endpoint).events()


class CalendarService(DirectoryService):
    """The discovery-built `calendar v3` service acting as `person`, with the directory's retrying `call`."""

    API = ("calendar", "v3")

    def __init__(
        self,
        settings: GoogleSettings,
        person: str,
        *,
        scopes: tuple[str, ...] = CALENDAR_SCOPES,
        credentials: service_account.Credentials | None = None,
        http: httplib2.Http | None = None,
    ) -> None:
        """Prepare the service (no network); `person` is the address whose primary calendar this is.

        `http`: connections to reuse (a thread reading several people's calendars keeps them alive);
        each person still signs in as themselves.
        """
        self.person = person
        self.scopes = tuple(scopes)
        self.settings = settings
        super().__init__(settings, credentials=credentials, http=http, resource=_resource(self._endpoint()))

    def events(self) -> Any:
        """The API's `events` collection (built once a process: building it costs about a millisecond)."""
        return _events(self._endpoint())

    def _delegated_credentials(self) -> service_account.Credentials:
        return delegated_credentials(
            self.settings.service_account_info, self.person, self.scopes, allow_private=self.settings.allow_private
        )

    def _endpoint(self) -> str:
        # Settings pointed somewhere else (a test's fake, a proxy) serve both APIs from there. The endpoint
        # replaces the discovery document's rootUrl + servicePath, so the service path is ours to add.
        root = CALENDAR_API if self.settings.base_url == GOOGLE_API else super()._endpoint()
        return root + "calendar/v3/"

    def _token_refused(self, error: auth_exceptions.RefreshError) -> ConnectorError:
        info = self.settings.service_account_info
        code = _oauth_error_code(error)
        if code == "invalid_grant":
            message = (
                f"Google refused to let the service account act as {self.person} (invalid_grant): check that this "
                "address is an active user of the Workspace domain and that the service-account key has not been "
                "deleted or disabled in Google Cloud."
            )
        else:
            message = (
                f"Google refused the service account's token request for {self.person}'s calendar "
                f"({code or 'refused'}). {delegation_help(info, self.scopes)}."
            )
        return ConnectorError(message, action_required=True)

    def _refused(self, failure: GoogleError, what: str) -> ConnectorError:
        said = f"{failure.status} {failure.reason or ''}".strip() + f": {failure.message}"
        if failure.status == 410:
            return GoogleGone(f"Google answered {said} while {what}", reason=failure.reason)
        if failure.status == 404:
            return GoogleNotFound(f"Google found nothing while {what} ({said})")
        if failure.status in (401, 403):
            help_text = delegation_help(self.settings.service_account_info, self.scopes)
            return ConnectorError(
                f"Google refused access to {self.person}'s calendar while {what} ({said}). Check that Google "
                f"Calendar is turned on for this user; {help_text}.",
                action_required=True,
            )
        if failure.status == 409:
            return GoogleConflict(f"Google refused the request while {what} ({said})")
        if failure.status == 400:
            return GoogleInvalid(f"Google refused the request while {what} ({said})", reason=failure.reason)
        return ConnectorError(f"Google answered {said} while {what}")
