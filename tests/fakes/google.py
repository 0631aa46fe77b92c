"""A fake Google: the OAuth token endpoint and the Admin SDK Directory API, over real HTTP on loopback.

It follows the real protocol closely enough for the real google-auth and google-api-python-client to
talk to it unchanged:

- `POST /token`: the JWT bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`). The
  assertion's RS256 signature is checked against the service account's public key, and `iss`, `aud`,
  `iat`/`exp`, `scope` and `sub` are checked as Google does: a scope the admin has not delegated gives
  401 `unauthorized_client`, a subject who is no user of the domain 400 `invalid_grant`.
- `admin/directory/v1/users` (customer, domain, maxResults ≤ 500, pageToken, showDeleted, projection),
  `groups` and `groups/{key}` (maxResults ≤ 200), `groups/{key}/members` (includeDerivedMembership),
  `users/watch` and `admin/directory_v1/channels/stop`, with Google's response and error shapes; each
  checks the bearer token, its scopes and that the delegated subject is an admin.
- Watch channels get the `sync` message on opening and a notification per change made through the
  test API (POSTs with the X-Goog-* headers to the channel's address, from a delivery thread).
- Error injection (`fail`, `stall`), a request log, and a count of discovery-document requests (the
  connector uses the bundled document, so it must stay 0).

Listings page by id (keyset), so that large directories page in O(page) per request.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import json
import queue
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user"
USER_READONLY = USER_SCOPE + ".readonly"
GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group"
GROUP_READONLY = GROUP_SCOPE + ".readonly"
MEMBER_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.member"
MEMBER_READONLY = MEMBER_SCOPE + ".readonly"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience Google expects in the assertion, wherever the grant is posted (google-auth always puts it).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
WATCH_EVENTS = ("add", "delete", "makeAdmin", "undelete", "update")

# Which scopes each route accepts (from the discovery document's `scopes` per method).
USERS_SCOPES = frozenset({USER_SCOPE, USER_READONLY})
GROUPS_SCOPES = frozenset({GROUP_SCOPE, GROUP_READONLY})
MEMBERS_SCOPES = frozenset({GROUP_SCOPE, GROUP_READONLY, MEMBER_SCOPE, MEMBER_READONLY})

UNAUTHORIZED_CLIENT = (
    "Client is unauthorized to retrieve access tokens using this method, "
    "or client not authorized for any of the scopes requested."
)


@cache
def _private_key() -> rsa.RSAPrivateKey:
    # One key per test session: generating RSA keys is the slow part.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def google_error(status: int, message: str, reason: str, *, domain: str = "global", **extra: str) -> dict[str, Any]:
    """Google's JSON error body (the shape of the error_*.json samples)."""
    detail: dict[str, str] = {"domain": domain, "reason": reason, "message": message, **extra}
    return {"error": {"errors": [detail], "code": status, "message": message}}


def throttle_body(status: int, reason: str = "rateLimitExceeded") -> dict[str, Any]:
    """The 429 / 403 rate-limit body Google sends (usageLimits domain)."""
    return google_error(status, "Rate Limit Exceeded", reason, domain="usageLimits")


@dataclass
class Fault:
    """An injected answer for the next `times` matching API requests."""

    status: int
    times: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None  # only requests whose path starts with this
    stall: float = 0.0  # sleep before answering (or instead of answering, for timeouts)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None


@dataclass(frozen=True)
class Delivery:
    """One notification the fake posted to a channel's address."""

    channel_id: str
    state: str
    number: int
    status: int | None
    error: str | None = None


@dataclass
class _Token:
    subject: str | None
    scopes: frozenset[str]
    expires: float


class FakeGoogle:
    """Google's token endpoint and Directory API for one Workspace customer, on 127.0.0.1.

    Use as a context manager. `service_account_info()` is a key whose `token_uri` points here;
    `base_url` is the API root to give the connector.
    """

    def __init__(
        self,
        *,
        domain: str = "example.com",
        customer_id: str = "C03az79cb",
        admin_email: str | None = None,
        project: str = "deskbridge-test",
        token_ttl: int = 3600,
        channel_ttl: int = 6 * 3600,
    ) -> None:
        """An empty directory with one super admin (`admin_email`, default admin@<domain>)."""
        self.domain = domain
        self.customer_id = customer_id
        self.project = project
        self.token_ttl = token_ttl
        self.channel_ttl = channel_ttl
        self.client_email = f"deskbridge@{project}.iam.gserviceaccount.com"
        self.client_id = "104857600000000000042"
        self.private_key_id = hashlib.sha1(self.client_email.encode()).hexdigest()
        self.public_key = _private_key().public_key()
        # What a super admin authorised for this client ID under domain-wide delegation.
        self.delegated_scopes: set[str] = {USER_READONLY, GROUP_READONLY}
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        self.user_order: list[str] = []  # sorted ids, for keyset paging
        self.deleted: dict[str, dict[str, Any]] = {}
        self.deleted_order: list[str] = []
        self.groups: dict[str, dict[str, Any]] = {}
        self.group_order: list[str] = []
        self.members: dict[str, dict[str, str]] = {}  # group id -> member id -> type
        self.channels: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, _Token] = {}
        self.grants: list[dict[str, Any]] = []  # the claims of every assertion that got a token
        self.token_requests = 0
        self.discovery_requests = 0
        self.requests: list[LoggedRequest] = []
        self.deliveries: list[Delivery] = []
        self._faults: deque[Fault] = deque()
        self._ids = itertools.count(1)
        self._messages = itertools.count(2)  # 1 is every channel's sync message
        self._outbox: queue.Queue[tuple[str, dict[str, str], bytes, str, str, int] | None] = queue.Queue()
        self._delivered = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.admin_email = admin_email or f"admin@{domain}"
        self.admin_id = self.add_user(self.admin_email, "Ada", "Admin", admin=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeGoogle:
        """Listen on a free loopback port and start the delivery thread."""
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        serve = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-google", daemon=True)
        deliver = threading.Thread(target=self._deliver_loop, name="fake-google-push", daemon=True)
        self._threads = [serve, deliver]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The API root, with a trailing slash (what the connector's base_url takes)."""
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def token_uri(self) -> str:
        """Where the JWT bearer grant goes."""
        return self.base_url + "token"

    def service_account_info(self) -> dict[str, str]:
        """A service-account key as Google issues it, signed with the session's test key, token_uri here."""
        pem = _private_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": self.private_key_id,
            "private_key": pem.decode(),
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + quote(self.client_email),
            "universe_domain": "googleapis.com",
        }

    def rotate_key(self) -> None:
        """Google now only knows another key: assertions signed with the issued one fail (invalid_grant)."""
        self.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()

    # -- test API: users ----------------------------------------------------------------------------

    def _new_user_id(self) -> str:
        # Google user ids are 21-digit numbers; same length keeps string order = numeric order.
        return str(100_000_000_000_000_000_000 + next(self._ids))

    def add_user(
        self,
        email: str,
        given: str = "",
        family: str = "",
        *,
        org_unit: str = "/",
        suspended: bool = False,
        archived: bool = False,
        admin: bool = False,
        user_id: str | None = None,
        notify: bool = True,
    ) -> str:
        """Create a user (an `add` notification to watching channels); returns its id."""
        with self.lock:
            uid = user_id or self._new_user_id()
            self.users[uid] = {
                "kind": "admin#directory#user",
                "id": uid,
                "etag": _etag(uid, 0),
                "primaryEmail": email,
                "name": {"givenName": given, "familyName": family, "fullName": f"{given} {family}".strip()},
                "isAdmin": admin,
                "isDelegatedAdmin": False,
                "lastLoginTime": "1970-01-01T00:00:00.000Z",
                "creationTime": _rfc3339(time.time()),
                "agreedToTerms": True,
                "suspended": suspended,
                "archived": archived,
                "changePasswordAtNextLogin": False,
                "ipWhitelisted": False,
                "emails": [{"address": email, "primary": True}],
                "customerId": self.customer_id,
                "orgUnitPath": org_unit,
                "isMailboxSetup": True,
                "includeInGlobalAddressList": True,
            }
            if suspended:
                self.users[uid]["suspensionReason"] = "ADMIN"
            if self.user_order and uid < self.user_order[-1]:
                bisect.insort(self.user_order, uid)
            else:
                self.user_order.append(uid)
        if notify:
            self.notify("add", uid)
        return uid

    def add_users(self, count: int, *, prefix: str = "user") -> list[str]:
        """Create many plain users quickly (no notifications); returns their ids in order."""
        return [self.add_user(f"{prefix}{n}@{self.domain}", "User", str(n), notify=False) for n in range(1, count + 1)]

    def update_user(
        self,
        user_id: str,
        *,
        email: str | None = None,
        given: str | None = None,
        family: str | None = None,
        org_unit: str | None = None,
        suspended: bool | None = None,
        archived: bool | None = None,
    ) -> None:
        """Change a user (an `update` notification)."""
        with self.lock:
            user = self.users[user_id]
            if email is not None:
                user["primaryEmail"] = email
                user["emails"] = [{"address": email, "primary": True}]
            name = user["name"]
            if given is not None:
                name["givenName"] = given
            if family is not None:
                name["familyName"] = family
            name["fullName"] = f"{name['givenName']} {name['familyName']}".strip()
            if org_unit is not None:
                user["orgUnitPath"] = org_unit
            if suspended is not None:
                user["suspended"] = suspended
                if suspended:
                    user["suspensionReason"] = "ADMIN"
                else:
                    user.pop("suspensionReason", None)
            if archived is not None:
                user["archived"] = archived
                if archived:
                    user["archivalTime"] = _rfc3339(time.time())
            user["etag"] = _etag(user_id, next(self._ids))
        self.notify("update", user_id)

    def suspend_user(self, user_id: str, suspended: bool = True) -> None:
        """Suspend (or unsuspend) a user."""
        self.update_user(user_id, suspended=suspended)

    def archive_user(self, user_id: str, archived: bool = True) -> None:
        """Archive (or unarchive) a user."""
        self.update_user(user_id, archived=archived)

    def make_admin(self, user_id: str, admin: bool = True) -> None:
        """Grant or revoke super admin (a `makeAdmin` notification)."""
        with self.lock:
            self.users[user_id]["isAdmin"] = admin
        self.notify("makeAdmin", user_id)

    def delete_user(self, user_id: str) -> None:
        """Delete a user: listed with showDeleted=true from now on, gone from its groups (a `delete`)."""
        with self.lock:
            user = self.users.pop(user_id)
            self.user_order.remove(user_id)
            user["deletionTime"] = _rfc3339(time.time())
            self.deleted[user_id] = user
            bisect.insort(self.deleted_order, user_id)
            for members in self.members.values():
                members.pop(user_id, None)
        self.notify("delete", user_id, user)

    def undelete_user(self, user_id: str) -> None:
        """Restore a deleted user (an `undelete`)."""
        with self.lock:
            user = self.deleted.pop(user_id)
            self.deleted_order.remove(user_id)
            user.pop("deletionTime", None)
            self.users[user_id] = user
            bisect.insort(self.user_order, user_id)
        self.notify("undelete", user_id)

    # -- test API: groups ---------------------------------------------------------------------------

    def add_group(self, email: str, name: str | None = None, *, group_id: str | None = None) -> str:
        """Create a group; returns its id."""
        with self.lock:
            gid = group_id or f"0{next(self._ids):014x}"
            self.groups[gid] = {
                "kind": "admin#directory#group",
                "id": gid,
                "etag": _etag(gid, 0),
                "email": email,
                "name": name if name is not None else email.split("@")[0],
                "directMembersCount": "0",
                "description": "",
                "adminCreated": True,
                "nonEditableAliases": [],
            }
            self.members[gid] = {}
            bisect.insort(self.group_order, gid)
        return gid

    def add_members(self, group_id: str, member_ids: list[str] | tuple[str, ...], kind: str = "USER") -> None:
        """Add users (or, with kind="GROUP", nested groups) to a group."""
        with self.lock:
            for member_id in member_ids:
                self.members[group_id][member_id] = kind
            self.groups[group_id]["directMembersCount"] = str(len(self.members[group_id]))

    def remove_member(self, group_id: str, member_id: str) -> None:
        """Take a member out of a group."""
        with self.lock:
            del self.members[group_id][member_id]
            self.groups[group_id]["directMembersCount"] = str(len(self.members[group_id]))

    def delete_group(self, group_id: str) -> None:
        """Delete a group."""
        with self.lock:
            del self.groups[group_id]
            del self.members[group_id]
            self.group_order.remove(group_id)
            for members in self.members.values():
                members.pop(group_id, None)

    # -- test API: faults and channels --------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        reason: str | None = None,
        body: dict[str, Any] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` API requests (optionally only under `path`) with an error.

        429 and 403 default to Google's rate-limit bodies (403 with `reason`, default rateLimitExceeded);
        5xx to a backendError body.
        """
        if body is None:
            if status in (403, 429):
                body = throttle_body(status, reason or "rateLimitExceeded")
            elif status >= 500:
                body = google_error(status, "Backend Error", reason or "backendError")
            else:
                body = google_error(status, "Error", reason or "error")
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self._faults.append(Fault(status, times, body, headers, path))

    def stall(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        """Hold the next `times` API requests for `seconds` before answering them normally."""
        with self.lock:
            self._faults.append(Fault(0, times, path=path, stall=seconds))

    def notify(self, event: str, user_id: str, user: dict[str, Any] | None = None) -> None:
        """Post a change notification to every live channel watching `event`."""
        with self.lock:
            user = user or self.users.get(user_id) or self.deleted.get(user_id) or {"id": user_id}
            body = {k: user[k] for k in ("kind", "id", "etag", "primaryEmail") if k in user}
            now = time.time() * 1000
            targets = [c for c in self.channels.values() if c["event"] in (event, None) and c["expires"] > now]
            for channel in targets:
                self._enqueue(channel, event, next(self._messages), json.dumps(body).encode())

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until at least `count` notifications were posted (or the timeout); returns them all."""
        deadline = time.monotonic() + timeout
        with self._delivered:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._delivered.wait(left)
            return list(self.deliveries)

    def _enqueue(self, channel: dict[str, Any], state: str, number: int, body: bytes) -> None:
        headers = {
            "X-Goog-Channel-ID": channel["id"],
            "X-Goog-Channel-Expiration": format_datetime(datetime.fromtimestamp(channel["expires"] / 1000, UTC), True),
            "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-URI": channel["resourceUri"],
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(number),
        }
        if channel.get("token"):
            headers["X-Goog-Channel-Token"] = channel["token"]
        if body:
            headers["Content-Type"] = "application/json; utf-8"
        self._outbox.put((channel["address"], headers, body, channel["id"], state, number))

    def _deliver_loop(self) -> None:
        # Plain HTTP to loopback receivers; no proxies, whatever the environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while (item := self._outbox.get()) is not None:
            address, headers, body, channel_id, state, number = item
            request = urllib.request.Request(address, data=body, headers=headers, method="POST")
            try:
                with opener.open(request, timeout=5) as answer:
                    delivery = Delivery(channel_id, state, number, answer.status)
            except urllib.error.HTTPError as error:
                delivery = Delivery(channel_id, state, number, error.code)
            except OSError as error:
                delivery = Delivery(channel_id, state, number, None, str(error))
            with self._delivered:
                self.deliveries.append(delivery)
                self._delivered.notify_all()

    # -- request handling ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        """Answer one request: (status, headers, JSON body or None)."""
        split = urlsplit(target)
        path = unquote(split.path).lstrip("/")
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body: Any = None
        if raw and headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
        with self.lock:
            self.requests.append(LoggedRequest(method, path, query, body))
        if "discovery" in path:
            with self.lock:
                self.discovery_requests += 1
            return 404, {}, google_error(404, "Not Found", "notFound")
        if path == "token" and method == "POST":
            with self.lock:
                self.token_requests += 1
                return self._token(parse_qs(raw.decode()))
        fault = self._take_fault(path)
        if fault is not None:
            if fault.stall:
                time.sleep(fault.stall)
            if fault.status:
                return fault.status, fault.headers, fault.body
        with self.lock:
            return self._api(method, path, query, body, headers.get("authorization", ""))

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.path is None or path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        def refuse(status: int, error: str, description: str) -> tuple[int, dict[str, str], Any]:
            return status, {}, {"error": error, "error_description": description}

        if form.get("grant_type", [""])[0] != JWT_BEARER:
            return refuse(400, "unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", [""])[0])
        assertion = form.get("assertion", [""])[0]
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64decode(header_b64))
            claims = json.loads(_b64decode(claims_b64))
            signature = _b64decode(signature_b64)
        except ValueError:
            return refuse(400, "invalid_grant", "Invalid JWT: not a JWT")
        if header.get("alg") != "RS256":
            return refuse(400, "invalid_grant", "Invalid JWT: unsupported algorithm")
        try:
            self.public_key.verify(
                signature, f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return refuse(400, "invalid_grant", "Invalid JWT Signature.")
        if claims.get("iss") != self.client_email:
            return refuse(401, "invalid_client", "The OAuth client was not found.")
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            return refuse(400, "invalid_grant", "Invalid JWT: audience is not the token endpoint")
        now = time.time()
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600:
            return refuse(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                "Check your iat and exp values in the JWT claim.",
            )
        scopes = frozenset(str(claims.get("scope", "")).split())
        subject = claims.get("sub")
        if subject is not None:
            if not scopes or not scopes <= self.delegated_scopes:
                return refuse(401, "unauthorized_client", UNAUTHORIZED_CLIENT)
            if not any(u["primaryEmail"] == subject for u in self.users.values()):
                return refuse(400, "invalid_grant", "Invalid email or User ID")
        elif not scopes:
            return refuse(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = _Token(subject, scopes, now + self.token_ttl)
        self.grants.append(claims)
        return 200, {}, {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}

    def _api(
        self, method: str, path: str, query: dict[str, str], body: Any, authorization: str
    ) -> tuple[int, dict[str, str], Any]:
        routes: list[tuple[str, str, frozenset[str]]] = [
            ("GET", "admin/directory/v1/users", USERS_SCOPES),
            ("POST", "admin/directory/v1/users/watch", USERS_SCOPES),
            ("POST", "admin/directory_v1/channels/stop", USERS_SCOPES),
            ("GET", "admin/directory/v1/groups", GROUPS_SCOPES),
        ]
        parts = path.split("/")
        scopes_needed: frozenset[str] | None = None
        for route_method, route_path, needed in routes:
            if method == route_method and path == route_path:
                scopes_needed = needed
        if path.startswith("admin/directory/v1/groups/") and method == "GET":
            scopes_needed = MEMBERS_SCOPES if len(parts) == 6 and parts[5] == "members" else GROUPS_SCOPES
        if scopes_needed is None:
            return 404, {}, google_error(404, "Not Found", "notFound")
        token = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        if token is None or token.expires < time.time():
            return (
                401,
                {},
                google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential.",
                    "authError",
                    location="Authorization",
                    locationType="header",
                ),
            )
        if not token.scopes & scopes_needed:
            return (
                403,
                {},
                google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions"),
            )
        subject = next((u for u in self.users.values() if u["primaryEmail"] == token.subject), None)
        if subject is None or not subject["isAdmin"]:
            return 403, {}, google_error(403, "Not Authorized to access this resource/api", "forbidden")
        if path == "admin/directory/v1/users":
            return self._list_users(query)
        if path == "admin/directory/v1/users/watch":
            return self._watch(query, body)
        if path == "admin/directory_v1/channels/stop":
            return self._stop(body)
        if path == "admin/directory/v1/groups":
            return self._list_groups(query)
        group = self._group(parts[4])
        if group is None:
            return 404, {}, google_error(404, "Resource Not Found: groupKey", "notFound")
        if len(parts) == 5:
            return 200, {}, group
        return self._list_members(group["id"], query)

    def _check_customer(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any] | None:
        customer, domain = query.get("customer"), query.get("domain")
        if customer in ("my_customer", self.customer_id) or (customer is None and domain == self.domain):
            return None
        return 400, {}, google_error(400, "Bad Request", "badRequest")

    def _list_users(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if (refused := self._check_customer(query)) is not None:
            return refused
        deleted = query.get("showDeleted") == "true"
        store, order = (self.deleted, self.deleted_order) if deleted else (self.users, self.user_order)
        limit = _limit(query, default=100, most=500)
        page, token = _keyset_page(order, query.get("pageToken"), limit)
        answer: dict[str, Any] = {"kind": "admin#directory#users", "etag": _etag("users", len(order))}
        if page:
            answer["users"] = [store[uid] for uid in page]
        if token:
            answer["nextPageToken"] = token
        return 200, {}, answer

    def _list_groups(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if (refused := self._check_customer(query)) is not None:
            return refused
        limit = _limit(query, default=200, most=200)
        page, token = _keyset_page(self.group_order, query.get("pageToken"), limit)
        answer: dict[str, Any] = {"kind": "admin#directory#groups", "etag": _etag("groups", len(page))}
        if page:
            answer["groups"] = [self.groups[gid] for gid in page]
        if token:
            answer["nextPageToken"] = token
        return 200, {}, answer

    def _group(self, key: str) -> dict[str, Any] | None:
        if key in self.groups:
            return self.groups[key]
        return next((g for g in self.groups.values() if g["email"].lower() == key.lower()), None)

    def _list_members(self, group_id: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        entries = dict(self.members[group_id])
        if query.get("includeDerivedMembership") == "true":
            # Nested groups' members count too (the nested group itself stays listed, as type GROUP).
            pending, seen = [m for m, kind in entries.items() if kind == "GROUP"], {group_id}
            while pending:
                nested = pending.pop()
                if nested in seen or nested not in self.members:
                    continue
                seen.add(nested)
                for member_id, kind in self.members[nested].items():
                    entries.setdefault(member_id, kind)
                    if kind == "GROUP":
                        pending.append(member_id)
        order = sorted(entries)
        limit = _limit(query, default=200, most=200)
        page, token = _keyset_page(order, query.get("pageToken"), limit)
        answer: dict[str, Any] = {"kind": "admin#directory#members", "etag": _etag(group_id, len(order))}
        if page:
            answer["members"] = [self._member(member_id, entries[member_id]) for member_id in page]
        if token:
            answer["nextPageToken"] = token
        return 200, {}, answer

    def _member(self, member_id: str, kind: str) -> dict[str, Any]:
        if kind == "GROUP":
            email, status = self.groups[member_id]["email"], None
        elif kind != "USER":  # CUSTOMER (everyone in the account) or EXTERNAL: no user behind it
            email, status = (member_id if "@" in member_id else None), None
        else:
            user = self.users[member_id]
            email, status = user["primaryEmail"], "SUSPENDED" if user["suspended"] else "ACTIVE"
        member = {
            "kind": "admin#directory#member",
            "etag": _etag(member_id, 0),
            "id": member_id,
            "role": "MEMBER",
            "type": kind,
        }
        if email:
            member["email"] = email
        if status:
            member["status"] = status
        return member

    def _watch(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        if (refused := self._check_customer(query)) is not None:
            return refused
        if not isinstance(body, dict) or not body.get("id") or not body.get("address"):
            return 400, {}, google_error(400, "Required: id and address", "required")
        if body.get("type") not in ("web_hook", "webhook"):
            return 400, {}, google_error(400, "Invalid channel type", "invalid")
        if body["id"] in self.channels:
            return 400, {}, google_error(400, f"Channel id {body['id']} not unique", "channelIdNotUnique")
        event = query.get("event")
        if event is not None and event not in WATCH_EVENTS:
            return 400, {}, google_error(400, f"Invalid value for event: {event}", "invalidParameter")
        now = time.time() * 1000
        most = now + self.channel_ttl * 1000
        asked = body.get("expiration")
        expires = min(int(asked), most) if asked else most
        ttl = (body.get("params") or {}).get("ttl")
        if ttl is not None:  # params.ttl (seconds) also bounds the lifetime
            expires = min(expires, now + int(ttl) * 1000)
        resource = "admin/directory/v1/users?" + "&".join(
            f"{k}={quote(v)}" for k, v in (("customer", query.get("customer")), ("event", event)) if v
        )
        channel = {
            "kind": "api#channel",
            "id": body["id"],
            # Stable per watched resource (the users of this customer, for this event), as Google's is.
            "resourceId": base64.urlsafe_b64encode(hashlib.sha1(resource.encode()).digest()).decode().rstrip("="),
            "resourceUri": self.base_url + resource + "&alt=json",
            "token": body.get("token"),
            "expiration": str(int(expires)),
        }
        self.channels[body["id"]] = {**channel, "address": body["address"], "event": event, "expires": expires}
        self._enqueue(self.channels[body["id"]], "sync", 1, b"")
        return 200, {}, {k: v for k, v in channel.items() if v is not None}

    def _stop(self, body: Any) -> tuple[int, dict[str, str], Any]:
        channel_id = body.get("id") if isinstance(body, dict) else None
        channel = self.channels.get(channel_id or "")
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            message = f"Channel '{channel_id}' not found for project '{self.project}'"
            return 404, {}, google_error(404, message, "notFound")
        del self.channels[channel["id"]]
        return 204, {}, None


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: nothing worth printing.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler_for(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httplib2 expects of Google
        disable_nagle_algorithm = True  # headers and body go out as two writes: don't wait for the ACK between

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = fake.handle(self.command, self.path, headers, raw)
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keyset_page(order: list[str], token: str | None, limit: int) -> tuple[list[str], str | None]:
    # The token holds the last id served: the next page starts after it, even if ids came or went since.
    start = 0
    if token:
        start = bisect.bisect_right(order, _b64decode(token).decode())
    page = order[start : start + limit]
    more = start + limit < len(order)
    return page, (base64.urlsafe_b64encode(page[-1].encode()).decode().rstrip("=") if more and page else None)


def _limit(query: dict[str, str], *, default: int, most: int) -> int:
    try:
        asked = int(query.get("maxResults", default))
    except ValueError:
        return default
    return max(1, min(asked, most))


def _etag(key: str, version: int) -> str:
    return '"' + hashlib.sha1(f"{key}/{version}".encode()).hexdigest()[:27] + '"'


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
