"""A service-account key's `token_uri` goes through the outbound guard (issue 12, finding 2).

The key is admin input and google-auth posts the signed assertion (a bearer credential) to its
token_uri. With private targets refused, a key pointing at a loopback listener is refused before a
connection is made: the listener receives nothing, on every path that asks for a token (the
directory, the people's calendars, push channels), and the refusal names the token endpoint. The
control cases show the listener would have been reached without the guard.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.google import GoogleChannels, GoogleDirectory, GoogleSettings
from connectors.google.calendar import GoogleCalendar
from connectors.records import ConnectorError, Window
from tests.fakes.google import FakeGoogle
from tests.fakes.listener import Listener

REFUSED = "the token endpoint (token_uri of the service-account key) is refused"
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def pointed_at(settings: GoogleSettings, token_uri: str, *, allow_private: bool = False) -> GoogleSettings:
    info = {**settings.service_account_info, "token_uri": token_uri}
    return dataclasses.replace(settings, service_account_info=info, allow_private=allow_private)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_private_token_uri_is_refused_on_every_path_and_receives_nothing(
    fake: FakeGoogle, settings: GoogleSettings, listener: Listener, host: str
) -> None:
    private = pointed_at(settings, f"http://{host}:{listener.port}/token")
    window = Window(NOW, NOW + timedelta(days=7))
    calls = {
        "directory": lambda: list(GoogleDirectory(private).read(None)),
        "calendar": lambda: list(GoogleCalendar(private, fake.admin_email).read(None, window)),
        "channels": lambda: GoogleChannels(private).subscribe(
            "https://deskbridge.example/push/google/1", "", "s3cret", NOW + timedelta(hours=1)
        ),
    }
    for path, call in calls.items():
        with pytest.raises(ConnectorError) as refused:
            call()
        assert refused.value.action_required, path
        assert REFUSED in refused.value.message, path
        assert "is a loopback address" in refused.value.message, path

    assert listener.connections == 0
    assert fake.token_requests == 0
    assert not [request for request in fake.requests if request.path.startswith("admin/")]  # no API call either


def test_the_listener_is_reached_when_private_targets_are_allowed(settings: GoogleSettings, listener: Listener) -> None:
    # The control: the same key and listener, with the deployment allowing private targets.
    with pytest.raises(ConnectorError):
        list(
            GoogleDirectory(pointed_at(settings, f"http://127.0.0.1:{listener.port}/token", allow_private=True)).read(
                None
            )
        )
    assert listener.connections >= 1


def test_a_metadata_address_is_refused_even_when_private_targets_are_allowed(settings: GoogleSettings) -> None:
    metadata = pointed_at(settings, "http://169.254.169.254/computeMetadata/v1/token", allow_private=True)
    with pytest.raises(ConnectorError, match=re.escape(f"{REFUSED}: 169.254.169.254 is a cloud metadata address")):
        list(GoogleDirectory(metadata).read(None))


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(307)  # "repeat the POST there": the assertion would go along
        self.send_header("location", self.target)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_a_redirect_from_the_token_endpoint_is_not_followed(settings: GoogleSettings, listener: Listener) -> None:
    handler = type("Redirect", (_Redirect,), {"target": f"http://127.0.0.1:{listener.port}/token"})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        redirecting = pointed_at(settings, f"http://127.0.0.1:{server.server_address[1]}/token", allow_private=True)
        try:
            with pytest.raises(ConnectorError):
                list(GoogleDirectory(redirecting).read(None))
        finally:
            server.shutdown()
    assert listener.connections == 0
