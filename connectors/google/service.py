"""The Admin SDK Directory client: settings, the discovery-built service, and one retrying way to call it.

The service is built by google-api-python-client from the discovery document bundled with the
library (`static_discovery=True`), so starting a connector never fetches a document from Google. HTTP
goes through the library's own transport (httplib2 wrapped by google-auth-httplib2's AuthorizedHttp,
which adds the bearer token and refreshes it on a 401); we only hand it an httplib2.Http with our
timeout. The library's own retry (`num_retries`) ignores Retry-After and sleeps where tests cannot
see, so every call goes through `DirectoryService.call`, which does its own bounded backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from connectors.google.auth import SCOPES, delegated_credentials, delegation_help, refusal_message
from connectors.google.errors import GoogleError, parse_error, retry_after_seconds
from connectors.records import ConnectorError

GOOGLE_API = "https://admin.googleapis.com/"


@dataclass(frozen=True)
class GoogleSettings:
    """How to reach one Workspace customer's directory.

    `service_account_info` is the JSON key Google issues (as a dict); it is kept out of repr so that it
    never lands in a log. `admin_email` is the admin the service account acts as. `base_url` is the
    API root (tests point it at a fake). `sleep` is injectable so tests can see the backoff.
    """

    service_account_info: Mapping[str, Any] = field(repr=False)
    admin_email: str
    customer: str = "my_customer"  # or the customer ID (C0…); "my_customer" is the admin's own account
    base_url: str = GOOGLE_API
    timeout: float = 30.0  # seconds per HTTP request (token endpoint included)
    max_retries: int = 5  # retries per call after throttling, 5xx or a network failure
    max_wait: float = 120.0  # the longest pause we take; a longer Retry-After ends the round instead
    backoff: float = 1.0  # first pause without Retry-After; doubled on each retry
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    allow_private: bool = False  # the token endpoint may be a private address (the embedded mode, tests)


class GoogleNotFound(ConnectorError):
    """Google answered 404 (a channel already gone, a group that no longer exists)."""


class DirectoryService:
    """The discovery-built `admin directory_v1` service and a call that retries what is worth retrying.

    Subclasses (the Calendar API's service) change the API, the delegated subject and scopes, and the
    admin-facing messages through `API` and the `_delegated_credentials`, `_endpoint`, `_token_refused`
    and `_refused` hooks; the retrying `call` is shared.
    """

    API: tuple[str, str] = ("admin", "directory_v1")

    def __init__(
        self,
        settings: GoogleSettings,
        *,
        credentials: service_account.Credentials | None = None,
        http: httplib2.Http | None = None,
        resource: Any = None,
    ) -> None:
        """Build the service (no network); a key that is no service-account key is a ConnectorError for the admin.

        `http`: the connections to reuse (one thread's, kept alive across the calendars it reads);
        `resource`: a discovery-built service to reuse (every call is executed with this service's
        own authorised HTTP, whatever the resource was built with).
        """
        self.settings = settings
        if credentials is None:
            try:
                credentials = self._delegated_credentials()
            except ValueError as error:
                raise ConnectorError(f"{error}; upload the JSON key Google issued", action_required=True) from None
        self.credentials = credentials
        self.http = google_auth_httplib2.AuthorizedHttp(
            self.credentials, http=http or httplib2.Http(timeout=settings.timeout)
        )
        self.resource: Any = resource or build(
            *self.API,
            http=self.http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self._endpoint()},
        )
        self._throttled = 0
        self._failed = 0

    def call(self, make_request: Callable[[Any], Any], what: str) -> dict[str, Any]:
        """Execute `make_request(resource)` (a googleapiclient HttpRequest), retrying throttling and failures.

        `what` names the call for messages ("listing users"). Raises GoogleNotFound on 404 and
        ConnectorError otherwise; `action_required` when only an admin can fix the cause.
        """
        retries = 0
        while True:
            try:
                result = make_request(self.resource).execute(http=self.http, num_retries=0)
            except HttpError as error:
                failure = parse_error(error.resp.status, error.content)
                if not failure.retryable:
                    raise self._refused(failure, what) from None
                wait = retry_after_seconds(error.resp.get("retry-after"))
                if failure.throttled:
                    self._throttled += 1
                else:
                    self._failed += 1
                summary = f"Google answered {failure.status} ({failure.reason or failure.message}) while {what}"
            except auth_exceptions.RefreshError as error:
                if getattr(error, "retryable", False):
                    # google-auth has already retried the token endpoint itself: give the round up for now.
                    raise ConnectorError(f"Google's token endpoint failed while {what}; will try again") from None
                raise self._token_refused(error) from None
            except (OSError, httplib2.HttpLib2Error, auth_exceptions.TransportError) as error:
                # Timeouts and refused connections: the same request may well work a moment later.
                self._failed += 1
                wait = None
                summary = f"Google could not be reached while {what} ({type(error).__name__})"
            else:
                return result if isinstance(result, dict) else {}
            if retries >= self.settings.max_retries:
                raise ConnectorError(f"{summary}; gave up after {retries + 1} attempts", retry_after=wait)
            delay = wait if wait is not None else self.settings.backoff * 2**retries
            if delay > self.settings.max_wait:
                # Pausing a worker thread for longer than this helps nobody: end the round, say when to retry.
                raise ConnectorError(f"{summary}; asked to wait {delay:.0f} s", retry_after=delay)
            retries += 1
            self.settings.sleep(delay)

    def take_notes(self) -> tuple[str, ...]:
        """What happened since the last call, for the admin (and reset the counts)."""
        notes: list[str] = []
        if self._throttled:
            notes.append(f"throttled {self._throttled}× by Google")  # noqa: RUF001 - a multiplication sign on purpose
        if self._failed:
            notes.append(f"retried {self._failed}× after Google errors or timeouts")  # noqa: RUF001
        self._throttled = self._failed = 0
        return tuple(notes)

    def _delegated_credentials(self) -> service_account.Credentials:
        settings = self.settings
        return delegated_credentials(
            settings.service_account_info, settings.admin_email, allow_private=settings.allow_private
        )

    def _endpoint(self) -> str:
        base_url = self.settings.base_url
        return base_url if base_url.endswith("/") else base_url + "/"

    def _token_refused(self, error: auth_exceptions.RefreshError) -> ConnectorError:
        message = refusal_message(error, self.settings.service_account_info, self.settings.admin_email)
        return ConnectorError(message, action_required=True)

    def _refused(self, failure: GoogleError, what: str) -> ConnectorError:
        settings = self.settings
        said = (
            f"{failure.status} {failure.reason}: {failure.message}"
            if failure.reason
            else f"{failure.status}: {failure.message}"
        )
        if failure.status == 404:
            return GoogleNotFound(f"Google found nothing while {what} ({said})")
        if failure.status == 401 or (failure.status == 403 and failure.reason in SCOPE_REASONS):
            return ConnectorError(
                f"Google refused the service account's access while {what} ({said}). "
                f"{delegation_help(settings.service_account_info, SCOPES)}.",
                action_required=True,
            )
        if failure.status == 403:
            return ConnectorError(
                f"Google refused {settings.admin_email} access while {what} ({said}): the service account acts as "
                "this user, who must be an admin allowed to read users and groups (a super admin, or a role with "
                "the Admin API privileges Users: Read and Groups: Read).",
                action_required=True,
            )
        if failure.status == 400:
            return ConnectorError(
                f"Google refused the request while {what} ({said}); check the customer ID ({settings.customer}).",
                action_required=True,
            )
        return ConnectorError(f"Google answered {said} while {what}")


# 403 reasons that mean the token lacks a scope (old-style reason, and the newer status-style one).
SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
