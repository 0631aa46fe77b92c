"""The fake Microsoft identity platform: OIDC discovery and the v2.0 token endpoint (client credentials).

An application proves itself with its secret or with a client assertion: a JWT signed by the
certificate's private key, whose `x5t` (SHA-1) or `x5t#S256` header names the certificate and whose
audience is the token endpoint. Both are checked as Entra ID does, with the same error codes.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class App:
    """An app registration: a secret or a certificate, and the application permissions granted."""

    client_id: str
    secret: str | None = None
    certificate: x509.Certificate | None = None
    permissions: set[str] = field(default_factory=lambda: {"User.Read.All", "Group.Read.All"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Identity:
    """Tenant, app registrations and issued tokens."""

    def __init__(self, tenant_id: str, scope: str) -> None:
        self.tenant_id = tenant_id
        self.scope = scope  # what the token endpoint accepts: "<graph root>/.default"
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (client id, expiry)
        self.token_requests = 0
        self.token_lifetime = 3599
        self.lock = threading.Lock()

    def openid_configuration(self, base: str, tenant: str) -> tuple[int, dict[str, Any]]:
        """What `/{tenant}/v2.0/.well-known/openid-configuration` answers."""
        if tenant != self.tenant_id:
            return 400, {
                "error": "invalid_tenant",
                "error_description": f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud.",
            }
        root = f"{base}/{tenant}"
        return 200, {
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "tenant_region_scope": "EU",
        }

    def token(self, token_endpoint: str, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint: (status, body)."""
        with self.lock:
            self.token_requests += 1
        if tenant != self.tenant_id:
            return 400, _error("invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return 400, _error("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return 400, _error(
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        if form.get("scope") != self.scope:
            return 400, _error(
                "invalid_scope", f"AADSTS1002012: The provided value for scope {form.get('scope')} is not valid."
            )
        refusal = self._authenticate(app, token_endpoint, form)
        if refusal is not None:
            return 401, _error("invalid_client", refusal)
        access_token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access_token] = (app.client_id, time.time() + self.token_lifetime)
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": access_token,
        }

    def _authenticate(self, app: App, token_endpoint: str, form: dict[str, str]) -> str | None:
        if "client_secret" in form:
            if app.secret is None or not secrets.compare_digest(form["client_secret"], app.secret):
                return (
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID."
                )
            return None
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            return (
                "AADSTS7000218: The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'."
            )
        if app.certificate is None:
            return "AADSTS700027: Client assertion contains an invalid signature. No certificate is registered."
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return "AADSTS50027: JWT token is invalid or malformed."
        sha1 = _b64(app.certificate.fingerprint(hashes.SHA1()))  # x5t is SHA-1 by definition
        sha256 = _b64(app.certificate.fingerprint(hashes.SHA256()))
        if header.get("x5t", "").rstrip("=") != sha1 and header.get("x5t#S256", "").rstrip("=") != sha256:
            return (
                "AADSTS700027: The certificate with identifier used to sign the client assertion "
                "is not registered on application."
            )
        try:
            jwt.decode(
                assertion,
                app.certificate.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=token_endpoint,
                issuer=app.client_id,
                options={"require": ["exp", "aud", "iss", "sub", "jti"]},
            )
        except jwt.PyJWTError as error:
            return f"AADSTS700027: Client assertion failed signature validation. ({error})"
        return None

    def client_of(self, authorization: str | None) -> str | None:
        """The client id a `Bearer` token was issued to, if it is valid now."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self.lock:
            issued = self.tokens.get(authorization.removeprefix("Bearer "))
        if issued is None or issued[1] < time.time():
            return None
        return issued[0]


def _error(code: str, description: str) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return {
        "error": code,
        # Entra ID appends a trace id and a timestamp on further lines.
        "error_description": f"{description}\r\nTrace ID: {secrets.token_hex(8)}\r\nTimestamp: {stamp}",
        "error_codes": [int(description[6:].split(":")[0])] if description.startswith("AADSTS") else [],
    }
