"""The fake Microsoft identity platform and Graph, served over TLS on 127.0.0.1 from a background thread.

    with FakeGraph(tls) as fake:
        fake.identity.apps["app"] = App("app", secret="s3cret")
        fake.directory.add_user("u1", "ada@example.com", mail="ada@example.com")
        # authority host: fake.authority_host, Graph: fake.graph_url, tenant: fake.tenant_id

JSON batching (`POST /v1.0/$batch`): up to 20 requests, each answered on its own (status, headers,
body) as if sent alone with the batch's token and its own headers; a fault (below) hits the requests
inside a batch one by one, as Graph throttles them.

Test hooks: `throttle(n, retry_after)` / `fail(n, status)` answer the next n Graph requests with an
error; `requests` lists every (method, path) served (a request inside a batch as "GET in $batch");
`directory`, `calendars` (people's Outlook calendars, see calendars.py) and `subscriptions` hold the
state. A change to a calendar notifies the subscriptions on that person's events.

One user alone (as Graph documents it): `GET /users/{id | userPrincipalName}`, `GET /users?$filter=mail
eq '…'` (only that filter) and `GET /users/{id | userPrincipalName}/memberOf/microsoft.graph.group`
(the groups the user is a direct member of; needs Group.Read.All beside User.Read.All).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.graph.calendar_api import CalendarApi
from tests.fakes.graph.calendars import Calendars
from tests.fakes.graph.directory import Directory, SyncStateGone
from tests.fakes.graph.identity import Identity
from tests.fakes.graph.subscriptions import Subscriptions, is_events_resource
from tests.fakes.tls import TestTLS

PERMISSIONS = {"users": "User.Read.All", "groups": "Group.Read.All"}
CALENDAR_PERMISSIONS = {"Calendars.Read", "Calendars.ReadWrite"}  # either reads; writes need ReadWrite
MAX_BATCH = 20  # requests in one JSON batch


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: str | None


class FakeGraph:
    """Identity platform + Graph in one server; see the module docstring."""

    def __init__(
        self, tls: TestTLS, *, tenant_id: str = "contoso-tenant", page_size: int = 100, members_per_slice: int = 100
    ) -> None:
        self.tls = tls
        self.tenant_id = tenant_id
        self.directory = Directory(page_size=page_size, members_per_slice=members_per_slice)
        self.subscriptions = Subscriptions(tenant_id)
        self.requests: list[tuple[str, str]] = []
        self.resync_status = 410  # what an expired token gets: Graph sends 410, or 400 for old identity tokens
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler, tls.server_context(), self)
        self.port = self._server.server_address[1]
        self.authority_host = f"https://127.0.0.1:{self.port}"
        self.graph_url = f"{self.authority_host}/v1.0"
        self.identity = Identity(tenant_id, scope=f"{self.authority_host}/.default")
        self.calendars = Calendars()
        self.calendar_api = CalendarApi(self.calendars, self.graph_url)
        self.calendars.listener = self._event_changed
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-graph", daemon=True
        )

    def start(self) -> FakeGraph:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    # --- test hooks ----------------------------------------------------------------------------

    def throttle(self, count: int, retry_after: str | None = "1", status: int = 429) -> None:
        """Answer the next `count` Graph requests with `status` and `Retry-After` (as sent, e.g. "2.128")."""
        with self._lock:
            self._faults.extend(Fault(status, retry_after) for _ in range(count))

    def fail(self, count: int, status: int = 503) -> None:
        """Answer the next `count` Graph requests with `status` and no Retry-After."""
        self.throttle(count, None, status)

    def count(self, path_prefix: str, method: str = "GET") -> int:
        """How many requests went to paths starting with `path_prefix` (e.g. "/v1.0/users/delta")."""
        with self._lock:
            return sum(1 for m, path in self.requests if m == method and path.startswith(path_prefix))

    def _event_changed(self, user_id: str, event_id: str, change_type: str) -> None:
        names = {user_id.lower()} | {upn for upn, owner in self.calendars.aliases.items() if owner == user_id}
        self.subscriptions.notify_events(names, user_id, event_id, change_type)

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of new connections (the workers of a benchmark each
    # opening a pool) overflows it, and the kernel drops the SYNs, which clients resend only after a
    # second. Graph takes them all.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], context: ssl.SSLContext, fake: FakeGraph):
        super().__init__(address, handler)
        self.context = context
        self.fake = fake

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # The TLS handshake happens in the handler's thread (setup), never in the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-request are normal in tests


_USER_OR_GROUP = re.compile(r"^/v1\.0/(users|groups)/([^/]+)$")
_CALENDAR = re.compile(r"^/v1\.0/users/([^/]+)/(calendarView/delta|events)(?:/([^/]+))?$")
_MEMBER_OF = re.compile(r"^/v1\.0/users/([^/]+)/memberOf/microsoft\.graph\.group$")
_MAIL_FILTER = re.compile(r"^mail eq '((?:[^']|'')*)'$")
_SUBSCRIPTION = re.compile(r"^/v1\.0/subscriptions/([^/]+)$")
_DISCOVERY = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
_TOKEN = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so paging a large tenant reuses one connection
    timeout = 30
    # One buffered write per response (flushed by the base class) and no Nagle: otherwise headers
    # and body go out as two segments and delayed ACKs add ~40 ms to every request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.request, ssl.SSLSocket)
        self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeGraph:
        return self.server.fake

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ------------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _graph_error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"error": {"code": code, "message": message, "innerError": {"request-id": "fake", "date": "now"}}}
        self._send(status, body, headers)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        raw = self._body()
        self.fake._record(method, self.path)
        base = self.fake.authority_host
        if method == "GET" and (match := _DISCOVERY.match(path)):
            self._send(*self.fake.identity.openid_configuration(base, match.group(1)))
            return
        if method == "POST" and (match := _TOKEN.match(path)):
            form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
            self._send(*self.fake.identity.token(f"{base}{path}", match.group(1), form))
            return
        if not path.startswith("/v1.0/"):
            self._send(404, {"error": "not_found"})
            return
        if method == "POST" and path == "/v1.0/$batch":
            self._batch(raw)
            return
        self._graph(method, path, query, raw)

    def _batch(self, raw: bytes) -> None:
        if self.fake.identity.client_of(self.headers.get("Authorization")) is None:
            self._graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
            return
        payload = _json(raw)
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests or not all(isinstance(item, dict) for item in requests):
            self._graph_error(400, "BadRequest", "Invalid batch payload format.")
            return
        if len(requests) > MAX_BATCH:
            self._graph_error(400, "BadRequest", f"Number of batch requests exceeds the limit of {MAX_BATCH}.")
            return
        ids = [str(item.get("id", "")) for item in requests]
        if "" in ids or len(set(ids)) != len(ids):
            self._graph_error(400, "BadRequest", "Batch request ids must be present and unique.")
            return
        self._send(200, {"responses": [self._batched(item) for item in requests]})

    def _batched(self, item: dict[str, Any]) -> dict[str, Any]:
        """One request of a batch, answered as if alone: its own headers beside the batch's token."""
        answer: dict[str, Any] = {}

        def capture(status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            answer.update(status=status, headers=headers or {}, body=body)

        method, url = str(item.get("method", "GET")).upper(), "/v1.0/" + str(item.get("url", "")).lstrip("/")
        own = Message()
        for name, value in (item.get("headers") or {}).items():
            own[name] = str(value)
        own["Authorization"] = self.headers.get("Authorization") or ""
        outer = self.headers
        self.headers, self._send = own, capture  # type: ignore[method-assign]
        try:
            parts = urlsplit(url)
            self.fake._record(f"{method} in $batch", url)  # told apart from the same request sent alone
            body = json.dumps(item["body"]).encode() if "body" in item else b""
            self._graph(method, parts.path, parse_qs(parts.query), body)
        finally:
            self.headers = outer
            del self._send
        return {"id": item.get("id"), **answer}

    def _graph(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> None:
        client_id = self.fake.identity.client_of(self.headers.get("Authorization"))
        if client_id is None:
            self._graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
            return
        fault = self.fake._next_fault()
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            code = "TooManyRequests" if fault.status == 429 else "serviceNotAvailable"
            self._graph_error(fault.status, code, "Please retry again later.", headers)
            return
        app = self.fake.identity.apps[client_id]
        if match := _CALENDAR.match(path):
            self._calendar(method, match, query, raw, app.permissions)
            return
        resource = path.split("/")[2]
        needed = PERMISSIONS.get(resource)
        if resource == "subscriptions":
            needed = None  # Graph checks the permission of the resource subscribed to, below
        if needed and needed not in app.permissions:
            self._graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            return
        if method == "GET" and path in ("/v1.0/users/delta", "/v1.0/groups/delta"):
            self._delta(resource, query)
        elif method == "GET" and (match := _USER_OR_GROUP.match(path)):
            self._object(match.group(1), unquote(match.group(2)), query)
        elif method == "GET" and path == "/v1.0/users":
            self._users_by_mail(query)
        elif method == "GET" and (match := _MEMBER_OF.match(path)):
            if "Group.Read.All" not in app.permissions:
                self._graph_error(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
            else:
                self._member_of(unquote(match.group(1)), query)
        elif path == "/v1.0/subscriptions" and method == "POST":
            body = _json(raw)
            wanted = PERMISSIONS.get(str(body.get("resource", "")).strip("/")) if isinstance(body, dict) else None
            if isinstance(body, dict) and is_events_resource(str(body.get("resource", ""))):
                wanted = None if app.permissions & CALENDAR_PERMISSIONS else "Calendars.Read"
            if wanted and wanted not in app.permissions:
                self._graph_error(
                    403, "ExtensionError", f"Operation: Create; Exception: [Status Code: Forbidden; needs {wanted}]"
                )
                return
            self._send(*self.fake.subscriptions.create(body, client_id))
        elif (match := _SUBSCRIPTION.match(path)) and method == "PATCH":
            self._send(*self.fake.subscriptions.update(match.group(1), _json(raw), client_id))
        elif match and method == "DELETE":
            self._send(*self.fake.subscriptions.delete(match.group(1)))
        else:
            self._graph_error(400, "BadRequest", f"Unsupported request {method} {path}")

    def _calendar(
        self, method: str, match: re.Match[str], query: dict[str, list[str]], raw: bytes, granted: set[str]
    ) -> None:
        user, collection, event_id = unquote(match.group(1)), match.group(2), match.group(3)
        allowed = granted & (CALENDAR_PERMISSIONS if method == "GET" else {"Calendars.ReadWrite"})
        if not allowed:
            self._graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return
        prefer: dict[str, str] = {}
        for line in self.headers.get_all("Prefer") or ():
            for preference in line.split(","):
                name, _, value = preference.strip().partition("=")
                prefer[name.strip().lower()] = value.strip().strip('"')
        status, body = self.fake.calendar_api.handle(
            method,
            user,
            collection,
            unquote(event_id) if event_id else None,
            {key: values[0] for key, values in query.items()},
            _json(raw),
            prefer,
        )
        headers = (
            {"Preference-Applied": f'outlook.timezone="{prefer["outlook.timezone"]}"'}
            if "outlook.timezone" in prefer
            else None
        )
        self._send(status, body, headers)

    def _delta(self, stream: str, query: dict[str, list[str]]) -> None:
        directory = self.fake.directory
        select = tuple(query["$select"][0].split(",")) if "$select" in query else None
        try:
            if "$skiptoken" in query:
                skip = query["$skiptoken"][0]
            else:
                delta = query["$deltatoken"][0] if "$deltatoken" in query else None
                skip = directory.start(stream, select, delta)
            objects, next_skip, delta_token = directory.page(skip)
        except SyncStateGone:
            self._graph_error(
                self.fake.resync_status,
                "syncStateNotFound",
                "The sync state generation is not found. "
                "The delta token is expired and data must be synchronized again.",
                {"Location": f"{self.fake.graph_url}/{stream}/delta"},
            )
            return
        body: dict[str, Any] = {"@odata.context": f"{self.fake.graph_url}/$metadata#{stream}", "value": objects}
        if next_skip is not None:
            body["@odata.nextLink"] = f"{self.fake.graph_url}/{stream}/delta?$skiptoken={next_skip}"
        else:
            body["@odata.deltaLink"] = f"{self.fake.graph_url}/{stream}/delta?$deltatoken={delta_token}"
        self._send(200, body)

    def _object(self, kind: str, object_id: str, query: dict[str, list[str]]) -> None:
        directory = self.fake.directory
        select = tuple(query["$select"][0].split(",")) if "$select" in query else None
        with directory.lock:
            if kind == "users":
                user = directory.user_by_key(object_id)
                body = None if user is None or user.soft_deleted else user.to_graph(select)
            else:
                group = directory.groups.get(object_id)
                body = None if group is None else {"id": group.id, "displayName": group.name, "mail": group.mail}
        if body is None:
            self._graph_error(404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist.")
        else:
            self._send(200, body)

    def _users_by_mail(self, query: dict[str, list[str]]) -> None:
        match = _MAIL_FILTER.match(query.get("$filter", [""])[0])
        if match is None:
            self._graph_error(400, "Request_UnsupportedQuery", "Unsupported query (the fake knows mail eq '…').")
            return
        wanted = match.group(1).replace("''", "'").lower()
        select = tuple(query["$select"][0].split(",")) if "$select" in query else None
        directory = self.fake.directory
        with directory.lock:
            found = [
                user.to_graph(select)
                for user in directory.users.values()
                if not user.soft_deleted and (user.mail or "").lower() == wanted
            ]
        self._send(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": found})

    def _member_of(self, key: str, query: dict[str, list[str]]) -> None:
        directory = self.fake.directory
        with directory.lock:
            user = directory.user_by_key(key)
            if user is None or user.soft_deleted:
                self._graph_error(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
                return
            groups = [
                {"@odata.type": "#microsoft.graph.group", "id": group.id, "displayName": group.name, "mail": group.mail}
                for group in directory.groups.values()
                if group.members.get(user.id) == "user"
            ]
        self._send(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups", "value": groups})


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None
