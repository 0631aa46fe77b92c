"""App-only sign-in to the Microsoft identity platform with msal (OAuth 2.0 client credentials).

The application proves itself with a client secret or a certificate (a PEM private key and the
certificate's SHA-1 thumbprint, as registered in Entra ID). msal keeps the token in its in-memory
cache and hands it back until shortly before it expires, so asking for a token on every Graph
request costs nothing after the first.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msal  # type: ignore[import-untyped]
import requests

from connectors.records import ConnectorError

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
_EARLY = 300.0  # seconds before expiry a token is no longer used


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """A client secret from the app registration's "Certificates & secrets"."""

    value: str

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return "ClientSecret(value=***)"


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A certificate credential: the PEM private key and the SHA-1 thumbprint (hex) Entra ID shows."""

    private_key_pem: str
    thumbprint: str

    def __repr__(self) -> str:
        return f"ClientCertificate(thumbprint={self.thumbprint!r}, private_key_pem=***)"


Credential = ClientSecret | ClientCertificate

# AADSTS codes and OAuth errors that only an administrator can fix, with what to tell them.
_ADVICE = {
    "invalid_client": (
        "the client secret or certificate is wrong or has expired; upload a new one and update the connection"
    ),
    "unauthorized_client": "the application id is unknown in this tenant or not allowed the client credentials grant",
    "invalid_tenant": "the tenant id is wrong",
    "invalid_request": "the sign-in request was refused; check the tenant id and application id",
    "invalid_scope": "the Graph scope was refused; check the Graph URL",
}


def graph_scope(graph_url: str) -> str:
    """The `.default` scope of the Graph resource at `graph_url` (scheme and host, e.g. https://graph.microsoft.com)."""
    parts = urlsplit(graph_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


class GraphAuth:
    """Acquires (and caches) app-only tokens for Microsoft Graph.

    `verify` is a CA bundle path or True (the system's trust store); it applies to every request
    msal makes. The msal application is built on first use: building it already talks to the
    authority (OIDC discovery), and a connector should not do I/O in its constructor.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        credential: Credential,
        *,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        graph_url: str = DEFAULT_GRAPH_URL,
        verify: str | bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential = credential
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._scopes = [graph_scope(graph_url)]
        self._verify = verify
        self._timeout = timeout
        self._app: Any = None
        self._lock = threading.Lock()
        # Threads sharing this sign-in (a calendar batch) take turns asking msal, so the first
        # requests of a batch wait for one token instead of each fetching its own.
        self._token_lock = threading.Lock()
        self._held: tuple[str, float] | None = None  # the last token and until when (monotonic) it is used

    def _application(self) -> Any:
        with self._lock:
            if self._app is None:
                if isinstance(self._credential, ClientSecret):
                    client_credential: Any = self._credential.value
                else:
                    client_credential = {
                        "private_key": self._credential.private_key_pem,
                        "thumbprint": self._credential.thumbprint,
                    }
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=client_credential,
                        authority=self._authority,
                        http_client=_session(self._verify, self._timeout),
                        # Instance discovery asks login.microsoftonline.com whether an authority host
                        # is Microsoft's; msal skips it for Microsoft's own hosts anyway, and a host
                        # an admin configured on purpose (a sovereign cloud, a test fake) is trusted
                        # as given. Tenant (OIDC) discovery still runs and still validates the tenant.
                        instance_discovery=False,
                    )
                except ValueError as error:
                    # msal raises ValueError when OIDC discovery refuses the tenant.
                    raise ConnectorError(
                        f"Microsoft sign-in: tenant {self.tenant_id!r} was not found at {self._authority} "
                        f"({_first_line(error)}); check the tenant id",
                        action_required=True,
                    ) from None
                except requests.RequestException as error:
                    raise ConnectorError(f"Microsoft sign-in: {self._authority} unreachable: {error}") from None
            return self._app

    def token(self) -> str:
        """A valid access token for Graph: from msal's cache, or a new one from the token endpoint."""
        held = self._held
        if held is not None and time.monotonic() < held[1]:
            return held[0]  # msal's cache lookup costs more than the request it authorises, on every request
        app = self._application()
        try:
            with self._token_lock:
                asked = time.monotonic()
                result: dict[str, Any] = app.acquire_token_for_client(scopes=self._scopes)
        except requests.RequestException as error:
            raise ConnectorError(f"Microsoft sign-in: token endpoint unreachable: {error}") from None
        token = result.get("access_token")
        if isinstance(token, str):
            lifetime = result.get("expires_in")
            if isinstance(lifetime, int | float) and lifetime > _EARLY:
                # Held as long as msal would hand it back (it renews five minutes early), by this object
                # only: a sign-in lives as long as its connector (a sync, a calendar batch).
                self._held = (token, asked + float(lifetime) - _EARLY)
            return token
        code = str(result.get("error", "unknown_error"))
        description = _first_line(result.get("error_description") or "")
        advice = _ADVICE.get(code)
        if advice is None and code in {"temporarily_unavailable", "server_error"}:
            raise ConnectorError(f"Microsoft sign-in failed for now ({code}): {description}")
        message = (
            f"Microsoft sign-in refused for application {self.client_id} in tenant {self.tenant_id}: "
            f"{code}: {advice or 'check the app registration'} ({description})"
        )
        if isinstance(self._credential, ClientSecret) and self._credential.value:
            # Belt and braces: the identity platform never echoes the secret, but an admin sees this text.
            message = message.replace(self._credential.value, "***")
        raise ConnectorError(message, action_required=True)


def _session(verify: str | bool, timeout: float) -> requests.Session:
    """The requests session msal talks through, with `verify` applied to every request.

    msal's own `verify=` sets `Session.verify`, which requests lets REQUESTS_CA_BUNDLE /
    CURL_CA_BUNDLE override when the environment sets them (as most containers do), so a
    configured CA bundle would be ignored. Passing verify per request wins over the environment.
    msal leaves retries to a custom client: one retry on connection errors, as msal's default.
    """
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.request = functools.partial(session.request, verify=verify, timeout=timeout)  # type: ignore[method-assign]
    return session


def _first_line(text: object) -> str:
    # AADSTS descriptions carry trace ids and timestamps on further lines: keep the message.
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""
