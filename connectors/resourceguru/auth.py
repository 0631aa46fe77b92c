"""OAuth 2.0 with Resource Guru: the authorization code flow, and refresh that rotates the token pair.

As the document describes it: the admin is sent to `GET /oauth/authorize?client_id&redirect_uri&
response_type=code`; the code that comes back to the redirect URI is exchanged at `POST /oauth/token`
(`grant_type=authorization_code`, form-encoded as the document's Python and curl samples do) for
`{access_token, refresh_token, token_type: "bearer", expires_in: 604800}`. Tokens live 7 days; a
refresh (`grant_type=refresh_token`) expires the old access token *immediately*, so the new pair must
be saved before it is used: `TokenKeeper` hands it to `on_refresh` (the worker stores it encrypted)
and only then uses it. A refused grant (revoked, or already used by someone else) can only be fixed by
an admin connecting again: ConnectorError(action_required=True), with no token in the message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.records import ConnectorError

DEFAULT_BASE_URL = "https://api.resourceguruapp.com"
# OAuth errors only an admin can fix (RFC 6749 §5.2), with what to tell them.
_ADVICE = {
    "invalid_grant": "the authorisation was revoked, has expired or was already used; an admin must connect again",
    "invalid_client": "the application's client id or secret is wrong; check the app registered with Resource Guru",
    "unauthorized_client": "the application is not allowed this grant; check the app registered with Resource Guru",
    "invalid_request": "the request was refused; check the client id and redirect URI",
}


@dataclass(frozen=True, slots=True)
class OAuthApp:
    """The application registered at Resource Guru (client id and secret, redirect URI)."""

    client_id: str
    client_secret: str
    redirect_uri: str

    def __repr__(self) -> str:  # never let the secret reach a log line through repr()
        return f"OAuthApp(client_id={self.client_id!r}, client_secret=***, redirect_uri={self.redirect_uri!r})"


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token, the refresh token that replaces it, and when the access token expires (aware UTC)."""

    access_token: str
    refresh_token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"TokenPair(access_token=***, refresh_token=***, expires_at={self.expires_at.isoformat()})"


def authorize_url(app: OAuthApp, *, state: str | None = None, base_url: str = DEFAULT_BASE_URL) -> str:
    """Where to send the admin to grant access; `state` (not in the document, standard OAuth) guards the callback."""
    query = {"client_id": app.client_id, "redirect_uri": app.redirect_uri, "response_type": "code"}
    if state is not None:
        query["state"] = state
    return f"{base_url.rstrip('/')}/oauth/authorize?{urlencode(query)}"


def exchange_code(
    app: OAuthApp,
    code: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    http: httpx.Client | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> TokenPair:
    """Trade the code the redirect brought back for a token pair."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri}
    return _token_request(app, form, base_url=base_url, http=http, now=now)


def refresh_tokens(
    app: OAuthApp,
    refresh_token: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    http: httpx.Client | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> TokenPair:
    """A new pair for `refresh_token`; the old access token stops working at once."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return _token_request(app, form, base_url=base_url, http=http, now=now)


class TokenKeeper:
    """Hands out a valid access token, refreshing it shortly before it expires or when the API says 401.

    `on_refresh` receives every new pair before it is used. If it raises, the error propagates and
    the pair is kept aside unused, offered to `on_refresh` again on the next call: refreshing again
    is impossible (the refresh spent the old refresh token), so losing it would cost a reconnect.
    Refreshes are serialised: two threads refreshing with one refresh token would lock each other out.
    """

    def __init__(
        self,
        app: OAuthApp,
        tokens: TokenPair,
        *,
        on_refresh: Callable[[TokenPair], None],
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.Client | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        margin: timedelta = timedelta(minutes=5),
    ) -> None:
        self._app = app
        self._tokens = tokens
        self._unsaved: TokenPair | None = None
        self._on_refresh = on_refresh
        self._base_url = base_url
        self._http = http
        self._now = now
        self._margin = margin
        self._lock = threading.Lock()
        self.refreshed = 0  # how many refreshes this keeper made, for the notes

    def token(self) -> str:
        """The current access token, refreshed first when it expires within the margin."""
        with self._lock:
            if self._unsaved is not None or self._tokens.expires_at - self._margin <= self._now():
                self._refresh_locked()
            return self._tokens.access_token

    def refresh(self, rejected: str) -> str:
        """A fresh access token after the API refused `rejected`; no second refresh if another thread did one."""
        with self._lock:
            if self._unsaved is not None or self._tokens.access_token == rejected:
                self._refresh_locked()
            return self._tokens.access_token

    def _refresh_locked(self) -> None:
        if self._unsaved is None:
            self._unsaved = refresh_tokens(
                self._app, self._tokens.refresh_token, base_url=self._base_url, http=self._http, now=self._now
            )
            self.refreshed += 1
        self._on_refresh(self._unsaved)  # stored (encrypted) by the worker before anything uses it
        self._tokens, self._unsaved = self._unsaved, None


def _token_request(
    app: OAuthApp,
    form: Mapping[str, str],
    *,
    base_url: str,
    http: httpx.Client | None,
    now: Callable[[], datetime],
) -> TokenPair:
    url = f"{base_url.rstrip('/')}/oauth/token"
    data = {**form, "client_id": app.client_id, "client_secret": app.client_secret}
    secrets = [value for key, value in data.items() if key in ("client_secret", "code", "refresh_token") and value]
    client = http or httpx.Client(timeout=30.0)
    try:
        response = client.post(url, data=data, headers={"Accept": "application/json"})
    except httpx.TransportError as error:
        raise ConnectorError(f"Resource Guru sign-in: {url} unreachable: {type(error).__name__}") from None
    finally:
        if http is None:
            client.close()
    body = _json_object(response)
    if response.status_code == 200:
        return _pair(body, now())
    if response.status_code == 429:
        retry = response.headers.get("Retry-After", "")
        wait = float(retry) if retry.replace(".", "", 1).isdigit() else 60.0
        # 20 tokens per minute and 1,000 a day per user: waiting is all that helps.
        raise ConnectorError("Resource Guru sign-in: too many token requests; trying again later", retry_after=wait)
    if response.status_code >= 500:
        raise ConnectorError(f"Resource Guru sign-in failed for now ({response.status_code})")
    code = str(body.get("error") or f"http_{response.status_code}")
    description = _scrub(str(body.get("error_description") or ""), secrets)
    advice = _ADVICE.get(code, "an admin must connect Resource Guru again")
    detail = f" ({description})" if description else ""
    raise ConnectorError(
        f"Resource Guru refused the connection's authorisation: {code}: {advice}{detail}", action_required=True
    )


def _pair(body: Mapping[str, Any], issued: datetime) -> TokenPair:
    access, refresh, expires = body.get("access_token"), body.get("refresh_token"), body.get("expires_in")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise ConnectorError("Resource Guru sign-in: the token response has no access_token or refresh_token")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= 0:
        expires = 604800  # the document: "Tokens expire after 7 days"
    return TokenPair(access, refresh, issued + timedelta(seconds=float(expires)))


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _scrub(text: str, secrets: list[str]) -> str:
    # Belt and braces: providers rarely echo a code or token back, but an admin reads this text.
    for secret in secrets:
        text = text.replace(secret, "***")
    return text.splitlines()[0][:300] if text else ""
