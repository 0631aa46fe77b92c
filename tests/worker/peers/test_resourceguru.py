"""Resource Guru through the worker: people, bookings (busy) and time off (out of office), with rotating tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.resourceguru import OAuthApp, exchange_code
from store.models import ConnectionKind, ConnectionStatus
from sync.peers.readers import pair_credentials
from tests.fakes.resourceguru import FakeResourceGuru
from tests.worker.peers.conftest import World, today_at


def credentials(fake: FakeResourceGuru, **changes: object) -> dict[str, object]:
    """The app's credentials and a pair exchanged for a fresh code, as `deskbridge connect resourceguru` keeps."""
    app = OAuthApp(fake.client_id, fake.client_secret, fake.redirect_uri)
    pair = exchange_code(app, fake.issue_code(), base_url=fake.base_url)
    found: dict[str, object] = {"client_id": app.client_id, "client_secret": app.client_secret}
    found |= {"redirect_uri": app.redirect_uri, **pair_credentials(pair), "webhook_secret": "hook-secret"}
    return found | changes


def connect(world: World, fake: FakeResourceGuru, **changes: object) -> int:
    ada = fake.add_resource("Ada", "Lovelace", "ada@example.com")
    day = today_at(0, 1).date().isoformat()
    fake.add_booking([ada["id"]], day, day, duration=60, start_time=540)
    fake.add_downtime([ada["id"]], (today_at(0, 3).date()).isoformat(), (today_at(0, 4).date()).isoformat())
    return world.connect(ConnectionKind.RESOURCEGURU, {"account": fake.account}, credentials(fake, **changes))


def test_first_sync_brings_people_bookings_and_time_off(world: World, resourceguru: FakeResourceGuru) -> None:
    connection = world.sync(connect(world, resourceguru))
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert world.members() == {"ada@example.com": "active"}
    shows = sorted(event.show_as for event in world.events().values())
    assert shows == ["busy", "oof"]
    assert world.bookings() == []  # project bookings are not office days


def test_a_refreshed_pair_is_stored_encrypted_and_used_next_time(world: World, resourceguru: FakeResourceGuru) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()  # inside the refresh margin
    connection_id = connect(world, resourceguru, expires_at=soon)
    before = world.credentials(connection_id)
    assert world.sync(connection_id).status is ConnectionStatus.ACTIVE
    after = world.credentials(connection_id)
    assert after["refresh_token"] != before["refresh_token"]
    assert after["webhook_secret"] == "hook-secret"  # the rest of the credentials kept
    resourceguru.expire_access_tokens()  # the next sync refreshes with the stored (new) refresh token
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error


def test_a_revoked_grant_needs_an_admin(world: World, resourceguru: FakeResourceGuru) -> None:
    connection_id = connect(world, resourceguru)
    resourceguru.revoke_grant()
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTION_REQUIRED
    assert "connect again" in (connection.last_error or "")


def test_a_deleted_booking_is_removed(world: World, resourceguru: FakeResourceGuru) -> None:
    connection_id = connect(world, resourceguru)
    world.sync(connection_id)
    (booking_id,) = list(resourceguru.objects["bookings"])
    resourceguru.delete("bookings", booking_id)
    world.sync(connection_id)
    assert [event.show_as for event in world.events().values()] == ["oof"]


def test_a_throttled_request_waits_as_told(world: World, resourceguru: FakeResourceGuru) -> None:
    connection_id = connect(world, resourceguru)
    resourceguru.fail(1, status=429, retry_after="0")
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert any("throttled" in note for note in connection.last_notes)
