"""OAuth 2.0 client credentials for the Kadence public API, with the bearer token cached.

The API document says only `Authorizations: oauth`; the token URL, the single scope `public` and the
form fields follow Kadence's published OpenAPI and sample client (client id and secret in the form,
`expires_in` in seconds). Both URLs are settings, because Kadence has an EU (default) and a US region
and a token from one is refused by the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.records import ConnectorError

EU_TOKEN_URL = "https://login.onkadence.co/oauth2/token"  # noqa: S105 (a URL, not a password)
US_TOKEN_URL = "https://login.us.onkadence.co/oauth2/token"  # noqa: S105
SCOPE = "public"
# Refresh this long before the token runs out, so a request never leaves with a token that expires
# on the way; short-lived tokens keep at least half their life.
REFRESH_MARGIN = 60.0

# OAuth error codes (RFC 6749 §5.2) only an administrator can fix, with what to tell them.
_ADVICE = {
    "invalid_client": "the client id or secret is wrong, or the API client was deleted; update the connection",
    "unauthorized_client": "this API client may not use the client credentials grant",
    "invalid_scope": f"the scope {SCOPE!r} was refused; the API client needs public API access",
    "invalid_grant": "the grant was refused; check the API client in Kadence",
    "access_denied": "access was denied; check the API client in Kadence",
}


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """The API client's secret from Kadence's developer settings."""

    value: str

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return "ClientSecret(value=***)"


class KadenceAuth:
    """Hands out a bearer token, asking the token endpoint only when the cached one is (nearly) expired.

    `http` is the client token requests go through (the API client's own, so one TLS setting
    applies); `clock` is injectable (monotonic seconds) so tests can move time.
    """

    def __init__(
        self,
        client_id: str,
        secret: ClientSecret,
        *,
        token_url: str = EU_TOKEN_URL,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self.token_url = token_url
        self._secret = secret
        self._http = http or httpx.Client(timeout=30.0)
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        """A valid access token: the cached one, or a new one from the token endpoint."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._token, lifetime = self._fetch()
                margin = min(REFRESH_MARGIN, lifetime / 2)
                self._expires_at = self._clock() + lifetime - margin
            return self._token

    def forget(self, token: str) -> None:
        """Drop `token` (the API refused it before its time: revoked, or the clocks disagree)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret.value,
            "scope": SCOPE,
        }
        try:
            response = self._http.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as error:
            raise ConnectorError(f"Kadence sign-in: {self.token_url} unreachable ({type(error).__name__})") from None
        body = _json_object(response)
        if response.status_code >= 500 or response.status_code == 429:
            # Not the credentials' fault: the worker tries the whole read again later.
            raise ConnectorError(
                f"Kadence sign-in failed for now: the token endpoint answered {response.status_code}",
                retry_after=_seconds(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            raise ConnectorError(self._refusal(response.status_code, body), action_required=True)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise ConnectorError("Kadence sign-in: the token endpoint answered without an access_token")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            raise ConnectorError(f"Kadence sign-in: the token endpoint answered expires_in={lifetime!r}, not seconds")
        return token, float(lifetime)

    def _refusal(self, status: int, body: dict[str, Any]) -> str:
        code = str(body.get("error") or status)
        description = str(body.get("error_description") or "").strip().splitlines()
        advice = _ADVICE.get(code, "check the API client in Kadence's developer settings")
        message = f"Kadence sign-in refused for API client {self.client_id}: {code}: {advice}"
        if description:
            message += f" ({description[0]})"
        # Belt and braces: a token endpoint should never echo the secret, but an admin reads this text.
        return message.replace(self._secret.value, "***") if self._secret.value else message


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
