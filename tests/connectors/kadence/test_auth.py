"""Client credentials: the token is asked for once, refreshed before expiry or when refused, and bad
credentials stop the connection with a message the admin can act on."""

from __future__ import annotations

import httpx
import pytest

from connectors.kadence import Kadence
from connectors.records import ConnectorError
from tests.connectors.kadence.conftest import Clock, Sleeps, make_reader
from tests.fakes.kadence import FakeKadence

TOKEN = "/oauth2/token"


def test_token_request_is_client_credentials_with_the_public_scope(fake: FakeKadence, reader: Kadence) -> None:
    list(reader.people(None))

    token_requests = [r for r in fake.requests if r.path == TOKEN]
    assert [r.method for r in token_requests] == ["POST"]
    assert token_requests[0].form == {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.secret,
        "scope": "public",
    }
    api = [r for r in fake.requests if r.path != TOKEN]
    assert api, "the API was read"


def test_token_is_cached_across_reads(fake: FakeKadence, reader: Kadence) -> None:
    fake.add_user("ada@example.com")
    for _ in range(3):
        list(reader.people(None))

    assert fake.count(TOKEN, "POST") == 1
    assert fake.count("/v1/public/users") == 3


def test_token_is_refreshed_shortly_before_it_expires(fake: FakeKadence, reader: Kadence, clock: Clock) -> None:
    list(reader.people(None))
    clock.now += fake.token_lifetime - 120  # still well within its life
    list(reader.people(None))
    assert fake.count(TOKEN, "POST") == 1

    clock.now += 61  # within the last minute: refreshed before it could run out on the way
    list(reader.people(None))
    assert fake.count(TOKEN, "POST") == 2


def test_token_expired_at_kadence_is_replaced_once(fake: FakeKadence, reader: Kadence) -> None:
    fake.add_user("ada@example.com")
    list(reader.people(None))
    fake.expire_tokens()

    pages = list(reader.people(None))

    assert [user.email for user in pages[0].users] == ["ada@example.com"]
    assert fake.count(TOKEN, "POST") == 2


def test_refused_credentials_need_the_admin_and_never_show_the_secret(
    fake: FakeKadence, http: httpx.Client, sleeps: Sleeps
) -> None:
    reader = make_reader(fake, http, sleeps, secret="wrong-secret-value")

    with pytest.raises(ConnectorError) as caught:
        list(reader.people(None))

    error = caught.value
    assert error.action_required
    assert "invalid_client" in error.message
    assert fake.client_id in error.message
    assert "wrong-secret-value" not in error.message
    assert fake.count("/v1/public/users") == 0


def test_a_token_the_api_keeps_refusing_needs_the_admin(fake: FakeKadence, reader: Kadence) -> None:
    # The token endpoint still issues tokens, the API refuses them: one fresh token is tried, no more.
    fake.refuse_tokens = True

    with pytest.raises(ConnectorError) as caught:
        list(reader.people(None))

    assert caught.value.action_required
    assert "401" in caught.value.message
    assert fake.count("/v1/public/users") == 2
    assert fake.count(TOKEN, "POST") == 2


def test_access_denied_by_the_api_needs_the_admin(fake: FakeKadence, reader: Kadence) -> None:
    fake.answer_next("/v1/public/users", {"@type": "hydra:Error", "hydra:description": "Access Denied."}, status=403)

    with pytest.raises(ConnectorError) as caught:
        list(reader.people(None))

    assert caught.value.action_required
    assert "403: Access Denied." in caught.value.message
    assert fake.count(TOKEN, "POST") == 1  # a 403 is not a stale token: no new one is asked for
