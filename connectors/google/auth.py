"""Service-account credentials with domain-wide delegation, and what to tell an admin when Google refuses them.

A Workspace directory is read as one of its admins: the service account signs a JWT naming the admin
as `sub`, and Google's token endpoint (the key's `token_uri`) swaps it for an access token only when a
super admin has authorised the service account's client ID for exactly these scopes in the Admin
console. google-auth signs, posts and caches the token until shortly before it expires.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from google.auth.exceptions import MalformedError, RefreshError
from google.oauth2 import service_account

USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
# groups.list and members.list both accept the group scope, so `.group.member.readonly` is not needed:
# one scope fewer for the admin to authorise.
GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
SCOPES = (USER_SCOPE, GROUP_SCOPE)

DELEGATION_HELP = (
    "In the Google Admin console (Security > Access and data control > API controls > Manage domain-wide "
    "delegation) authorise client ID {client_id} for the scopes {scopes}"
)


def delegated_credentials(
    service_account_info: Mapping[str, Any], admin_email: str, scopes: tuple[str, ...] = SCOPES
) -> service_account.Credentials:
    """Credentials that act as `admin_email` through domain-wide delegation.

    Raises ValueError when the key is not a service-account key (the message never quotes the key).
    """
    base = _signing_credentials(json.dumps(dict(service_account_info), sort_keys=True))
    credentials: service_account.Credentials = base.with_subject(admin_email).with_scopes(list(scopes))  # type: ignore[no-untyped-call]
    return credentials


class _Delegated(service_account.Credentials):
    """Service-account credentials that skip google-auth's Regional Access Boundary lookup when acting as a
    person: the library itself says it does not apply to domain-wide delegation (it finds no URL to ask),
    yet starts a thread and copies the transport to find that out, on every token (a person's calendar
    sync is one token, so this was a tenth of a Google calendar sync's own CPU)."""

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return not self._subject and bool(super()._is_regional_access_boundary_lookup_required())  # type: ignore[no-untyped-call]


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
