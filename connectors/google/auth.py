"""Service-account credentials with domain-wide delegation, and what to tell an admin when Google refuses them.

A Workspace directory is read as one of its admins: the service account signs a JWT naming the admin
as `sub`, and Google's token endpoint (the key's `token_uri`) swaps it for an access token only when a
super admin has authorised the service account's client ID for exactly these scopes in the Admin
console. google-auth signs, posts and caches the token until shortly before it expires.

The key's `token_uri` is input (an admin uploads the key), and the assertion posted there is a bearer
credential: google-auth's token requests go through the outbound guard (`GuardedRequest` on a
`connectors.outbound` client, which checks every address it connects to, follows no redirect and
takes no proxy), whatever transport the API calls use. A refused endpoint is an admin's to fix.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import httpx
from google.auth import transport
from google.auth.exceptions import MalformedError, RefreshError, TransportError
from google.oauth2 import service_account

from connectors.outbound import UnsafeURL, checked_client
from connectors.records import ConnectorError

USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
# groups.list and members.list both accept the group scope, so `.group.member.readonly` is not needed:
# one scope fewer for the admin to authorise.
GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
SCOPES = (USER_SCOPE, GROUP_SCOPE)

TOKEN_ENDPOINT = "the token endpoint (token_uri of the service-account key)"  # noqa: S105 - a phrase
TOKEN_TIMEOUT_SECONDS = 30.0

DELEGATION_HELP = (
    "In the Google Admin console (Security > Access and data control > API controls > Manage domain-wide "
    "delegation) authorise client ID {client_id} for the scopes {scopes}"
)


def delegated_credentials(
    service_account_info: Mapping[str, Any],
    admin_email: str,
    scopes: tuple[str, ...] = SCOPES,
    *,
    allow_private: bool = False,
) -> service_account.Credentials:
    """Credentials that act as `admin_email` through domain-wide delegation, asking for tokens through
    the outbound guard (`allow_private`: the deployment lets private addresses be called).

    Raises ValueError when the key is not a service-account key (the message never quotes the key).
    """
    base = _signing_credentials(json.dumps(dict(service_account_info), sort_keys=True))
    credentials = base.with_subject(admin_email).with_scopes(list(scopes))  # type: ignore[no-untyped-call]
    assert isinstance(credentials, _Delegated)  # google-auth's copies keep the class
    credentials.token_request = GuardedRequest(_token_http(allow_private))
    return credentials


class _Delegated(service_account.Credentials):
    """Service-account credentials that ask for tokens only through `token_request` (the guard), and
    skip google-auth's Regional Access Boundary lookup when acting as a person: the library itself says
    it does not apply to domain-wide delegation (it finds no URL to ask), yet starts a thread and copies
    the transport to find that out, on every token (a person's calendar sync is one token, so this was
    a tenth of a Google calendar sync's own CPU)."""

    token_request: GuardedRequest | None = None  # set by delegated_credentials; a copy without it asks nothing

    def refresh(self, request: transport.Request) -> None:
        # `request` is the caller's transport (httplib2 here), which would post the signed assertion
        # to any token_uri: the guarded one is used instead.
        if self.token_request is None:
            raise ConnectorError("Google credentials made without the outbound guard; nothing was sent")
        super().refresh(self.token_request)  # type: ignore[no-untyped-call]

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return not self._subject and bool(super()._is_regional_access_boundary_lookup_required())  # type: ignore[no-untyped-call]


class GuardedRequest(transport.Request):
    """google-auth's HTTP transport interface on an httpx client of the outbound guard.

    A token endpoint the guard refuses is a ConnectorError for the admin (nothing was sent); a network
    failure is google-auth's TransportError, which callers retry like any other.
    """

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        try:
            response = self._http.request(
                method, url, content=body, headers=headers, timeout=timeout or TOKEN_TIMEOUT_SECONDS
            )
        except UnsafeURL as refused:
            message = f"{refused.about(TOKEN_ENDPOINT)}. Upload the key as Google issued it"
            raise ConnectorError(message, action_required=True) from None
        except httpx.HTTPError as error:
            reason = f"Google's token endpoint could not be reached ({type(error).__name__})"
            raise TransportError(reason) from None  # type: ignore[no-untyped-call]
        return _Response(response)


class _Response(transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


@functools.lru_cache(maxsize=2)
def _token_http(allow_private: bool) -> httpx.Client:
    # One client a process (per setting): token requests are few, and its pool is shared by every thread.
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0)
    return checked_client(
        allow_private=allow_private, what=TOKEN_ENDPOINT, timeout=TOKEN_TIMEOUT_SECONDS, limits=limits
    )


@functools.lru_cache(maxsize=32)
def _signing_credentials(key: str) -> service_account.Credentials:
    # Reading the private key costs tens of milliseconds; a calendar sync acts as each person in turn
    # with the same key, so the key is read once a process and each person's copy shares its signer.
    try:
        credentials: service_account.Credentials = _Delegated.from_service_account_info(json.loads(key))  # type: ignore[no-untyped-call]
    except ValueError as error:
        # google-auth's own MalformedError names missing fields only; anything else (a PEM cryptography cannot
        # read) is described in our words, so that no part of the key can end up in a log or on an admin page.
        detail = str(error) if isinstance(error, MalformedError) else "the private key cannot be read"
        raise ValueError(f"not a usable Google service-account key: {detail}") from None
    return credentials


def delegation_help(service_account_info: Mapping[str, Any], scopes: tuple[str, ...] = SCOPES) -> str:
    """The Admin console step that grants the service account its scopes (client ID and scopes are not secret)."""
    client_id = str(service_account_info.get("client_id") or service_account_info.get("client_email") or "?")
    return DELEGATION_HELP.format(client_id=client_id, scopes=", ".join(scopes))


def refusal_message(
    error: RefreshError, service_account_info: Mapping[str, Any], admin_email: str, scopes: tuple[str, ...] = SCOPES
) -> str:
    """An admin-facing account of a refused token request.

    Google answers `unauthorized_client` when delegation or a scope is missing and `invalid_grant` when
    the subject is no user of the domain (or the key was revoked); the raw error body is kept short and
    carries no secret, since it comes from the token endpoint, not from our key.
    """
    code = _oauth_error_code(error)
    if code == "invalid_grant":
        return (
            f"Google refused to let the service account act as {admin_email} (invalid_grant): check that this "
            "address is an existing admin of the Workspace domain and that the service-account key has not "
            "been deleted or disabled in Google Cloud."
        )
    return (
        f"Google refused the service account's token request ({code or 'refused'}). "
        f"{delegation_help(service_account_info, scopes)}; and check that {admin_email} is an admin of the domain."
    )


def _oauth_error_code(error: RefreshError) -> str | None:
    # google-auth raises RefreshError(message, response_body) where the body is the token endpoint's JSON.
    for arg in error.args[1:]:
        if isinstance(arg, Mapping) and isinstance(arg.get("error"), str):
            return str(arg["error"])
    text = str(error.args[0]) if error.args else ""
    for code in ("unauthorized_client", "invalid_grant", "invalid_scope", "access_denied"):
        if code in text:
            return code
    return None
