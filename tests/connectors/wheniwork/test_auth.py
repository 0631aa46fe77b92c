"""The developer-key login, W-Token on every request, one re-login when the token stops working."""

from __future__ import annotations

import json

import pytest

from connectors.records import ConnectorError
from connectors.wheniwork import WhenIWork, WhenIWorkClient
from tests.connectors.wheniwork.conftest import PASSWORD, USERNAME, WINDOW, Sleeps, make_client
from tests.fakes.wheniwork import DEVELOPER_KEY, FakeWhenIWork


def test_login_once_with_the_key_then_the_token_alone(fake: FakeWhenIWork, reader: WhenIWork) -> None:
    list(reader.events(None, WINDOW))
    list(reader.people(None))
    login, *rest = fake.log
    assert (login.method, login.path, login.headers["w-key"]) == ("POST", "/2/login", DEVELOPER_KEY)
    events, people = ["/2/locations", "/2/users", "/2/shifts", "/2/requests"], ["/2/locations", "/2/users"]
    assert [entry.path for entry in rest] == events + people
    for entry in rest:
        assert entry.headers["w-token"], entry.path
        assert "w-key" not in entry.headers, "the document says a token needs no W-Key beside it"
        assert "W-Token" not in entry.query, "a token in the URL ends up in logs"


def test_the_login_body_is_the_documented_one(fake: FakeWhenIWork, client: WhenIWorkClient) -> None:
    fake.answer_next("/2/login", 200, json.dumps({"users": [{"id": 1, "token": "t0k"}], "accounts": []}).encode())
    fake.answer_next("/2/users", 200, b'{"users": []}')
    client.get_json("users")
    assert fake.log[1].headers["w-token"] == "t0k"


def test_an_expired_token_logs_in_again_once_and_retries(fake: FakeWhenIWork, reader: WhenIWork) -> None:
    list(reader.people(None))
    fake.expire_tokens()
    pages = list(reader.events(None, WINDOW))
    assert fake.paths("POST") == ["/2/login", "/2/login"]
    assert fake.paths().count("/2/locations") == 3  # the refused request was sent again with the new token
    assert "the When I Work token expired; logged in again 1\u00d7" in pages[0].notes


def test_a_token_refused_right_after_a_fresh_login_is_not_retried_forever(
    fake: FakeWhenIWork, client: WhenIWorkClient
) -> None:
    client.login()
    fake.answer_next("/2/users", 401, b'{"error": "Invalid or expired token", "code": 401}')
    fake.answer_next("/2/users", 401, b'{"error": "Invalid or expired token", "code": 401}')
    with pytest.raises(ConnectorError) as caught:
        client.get_json("users")
    assert caught.value.action_required
    assert fake.paths("POST") == ["/2/login", "/2/login"]
    assert fake.paths().count("/2/users") == 2


@pytest.mark.parametrize(
    ("override", "words"),
    [({"password": "wrong-password"}, "Incorrect username or password"), ({"developer_key": "nope"}, "developer key")],
)
def test_bad_credentials_need_an_admin_and_never_show_secrets(
    fake: FakeWhenIWork, sleeps: Sleeps, override: dict[str, str], words: str
) -> None:
    reader = WhenIWork(make_client(fake, sleeps, **override))
    with pytest.raises(ConnectorError) as caught:
        list(reader.people(None))
    error = caught.value
    assert error.action_required
    assert USERNAME in error.message
    assert words in error.message
    for secret in ("wrong-password", "nope", PASSWORD, DEVELOPER_KEY):
        assert secret not in error.message
    assert fake.paths() == []
    assert fake.paths("POST") == ["/2/login"]
    assert sleeps.calls == []


def test_a_server_echoing_the_password_is_scrubbed(fake: FakeWhenIWork, client: WhenIWorkClient) -> None:
    fake.answer_next(
        "/2/login", 401, json.dumps({"error": f"bad password {PASSWORD} for key {DEVELOPER_KEY}"}).encode()
    )
    with pytest.raises(ConnectorError) as caught:
        client.login()
    assert PASSWORD not in caught.value.message
    assert DEVELOPER_KEY not in caught.value.message
    assert "bad password *** for key ***" in caught.value.message
    assert PASSWORD not in repr(client)
    assert DEVELOPER_KEY not in repr(client)


def test_a_login_answer_without_a_token_is_an_error(fake: FakeWhenIWork, client: WhenIWorkClient) -> None:
    fake.answer_next("/2/login", 200, b'{"users": [], "accounts": []}')
    with pytest.raises(ConnectorError, match=r"users\[0\]\.token"):
        client.login()


def test_a_refusal_above_the_users_permission_level_needs_an_admin(
    fake: FakeWhenIWork, client: WhenIWorkClient
) -> None:
    fake.answer_next("/2/shifts", 403, b'{"error": "Forbidden", "code": 403}')
    with pytest.raises(ConnectorError) as caught:
        client.get_json("shifts")
    assert caught.value.action_required
    assert "403" in caught.value.message
    assert fake.paths("POST") == ["/2/login"]  # a 403 is not an expired token
