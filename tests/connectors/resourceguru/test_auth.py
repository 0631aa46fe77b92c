"""OAuth: the code exchange, refresh that rotates the pair (and hands it over first), revoked grants."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.records import ConnectorError
from connectors.resourceguru import OAuthApp, TokenKeeper, TokenPair, authorize_url, exchange_code, refresh_tokens
from tests.connectors.resourceguru.conftest import NOW, Vault, Wired, app_of, wire
from tests.fakes.resourceguru import FakeResourceGuru, ManualClock


def test_authorize_url_asks_for_a_code() -> None:
    url = authorize_url(OAuthApp("cid", "secret", "https://desk.example/cb"), state="xyz", base_url="https://rg.test/")
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("rg.test", "/oauth/authorize")
    query = parse_qs(parts.query)
    assert query == {
        "client_id": ["cid"],
        "redirect_uri": ["https://desk.example/cb"],
        "response_type": ["code"],
        "state": ["xyz"],
    }
    assert "secret" not in url


def test_code_exchange_gives_a_seven_day_pair_and_the_code_works_once(fake: FakeResourceGuru) -> None:
    code = fake.issue_code()
    pair = exchange_code(app_of(fake), code, base_url=fake.base_url, now=lambda: NOW)
    assert pair.access_token
    assert pair.refresh_token
    assert pair.expires_at == NOW + timedelta(days=7)
    assert fake.token_requests[-1]["grant_type"] == "authorization_code"
    assert fake.token_requests[-1]["redirect_uri"] == fake.redirect_uri
    assert pair.access_token not in repr(pair)
    with pytest.raises(ConnectorError) as refused:
        exchange_code(app_of(fake), code, base_url=fake.base_url)
    assert refused.value.action_required
    assert "invalid_grant" in refused.value.message
    assert code not in refused.value.message


def test_a_wrong_client_secret_is_for_the_admin_and_not_echoed(fake: FakeResourceGuru) -> None:
    app = OAuthApp(fake.client_id, "wrong-secret-value", fake.redirect_uri)
    with pytest.raises(ConnectorError) as refused:
        exchange_code(app, fake.issue_code(), base_url=fake.base_url)
    assert refused.value.action_required
    assert "invalid_client" in refused.value.message
    assert "wrong-secret-value" not in refused.value.message
    assert "wrong-secret-value" not in repr(app)


def test_a_401_refreshes_once_hands_the_new_pair_over_and_the_old_one_is_dead(wired: Wired) -> None:
    fake = wired.fake
    fake.add_resource("Ada", "Lovelace", "ada@example.com")
    fake.expire_access_tokens()
    pages = list(wired.reader.people(None))
    assert [user.email for page in pages for user in page.users] == ["ada@example.com"]
    assert len(wired.vault.pairs) == 1
    new = wired.vault.pairs[0]
    assert new.access_token != wired.first.access_token
    assert new.refresh_token != wired.first.refresh_token
    assert fake.token_requests[-1]["grant_type"] == "refresh_token"
    assert "access token refreshed after Resource Guru refused it" in pages[-1].notes
    assert fake.requests[-1].authorization == f"Bearer {new.access_token}"
    # Afterwards only the new pair works: the old access token and the old refresh token are refused.
    old = httpx.get(
        f"{fake.base_url}/v1/{fake.account}/resources",
        headers={"Authorization": f"Bearer {wired.first.access_token}"},
    )
    assert old.status_code == 401
    with pytest.raises(ConnectorError) as refused:
        refresh_tokens(app_of(fake), wired.first.refresh_token, base_url=fake.base_url)
    assert refused.value.action_required


def test_the_new_pair_is_stored_before_it_is_used(fake: FakeResourceGuru, clock: ManualClock) -> None:
    sent_with_new_token_before_store: list[int] = []

    def store(pair: TokenPair) -> None:
        # Nothing may have reached the API with the new token yet.
        used = sum(1 for r in fake.requests if r.authorization == f"Bearer {pair.access_token}")
        sent_with_new_token_before_store.append(used)
        stored.append(pair)

    stored: list[TokenPair] = []
    # A week on, the pair expires within the margin: refreshed before the request, no 401 needed.
    w = wire(fake, clock, keeper_now=lambda: NOW + timedelta(days=7), on_refresh=store)
    list(w.reader.people(None))
    assert sent_with_new_token_before_store == [0]
    assert w.keeper.refreshed == 1
    assert [r.authorization for r in fake.requests] == [f"Bearer {stored[0].access_token}"] * len(fake.requests)


def test_a_pair_the_worker_cannot_store_is_never_used(fake: FakeResourceGuru, clock: ManualClock) -> None:
    w = wire(fake, clock)
    w.vault.fail = True
    fake.expire_access_tokens()
    with pytest.raises(RuntimeError, match="store is down"):
        list(w.reader.people(None))
    # One refused request with the old token, then nothing: the unsaved token was never sent.
    assert [r.authorization for r in fake.requests] == [f"Bearer {w.first.access_token}"]
    refreshes = len(fake.token_requests)
    # The store is back: the pair kept aside is stored, then used; no second refresh (it could only fail).
    w.vault.fail = False
    list(w.reader.people(None))
    assert len(fake.token_requests) == refreshes
    assert len(w.vault.pairs) == 1
    assert fake.requests[-1].authorization == f"Bearer {w.vault.pairs[0].access_token}"


def test_a_revoked_grant_asks_the_admin_to_connect_again_without_leaking_tokens(wired: Wired) -> None:
    wired.fake.revoke_grant()
    with pytest.raises(ConnectorError) as refused:
        list(wired.reader.people(None))
    error = refused.value
    assert error.action_required
    assert "connect" in error.message
    assert wired.first.access_token not in error.message
    assert wired.first.refresh_token not in error.message
    assert wired.vault.pairs == []


def test_forbidden_and_unknown_account_are_for_the_admin(fake: FakeResourceGuru, clock: ManualClock) -> None:
    w = wire(fake, clock)
    fake.fail(1, 403)
    with pytest.raises(ConnectorError) as forbidden:
        list(w.reader.people(None))
    assert forbidden.value.action_required
    assert "403" in forbidden.value.message
    w.client.account = "no-such-corp"
    with pytest.raises(ConnectorError) as missing:
        list(w.reader.people(None))
    assert missing.value.action_required
    assert "'no-such-corp'" in missing.value.message
    assert fake.requests[-1].path == "/v1/no-such-corp/resource_types"


def test_keeper_refreshes_just_once_for_a_token_another_thread_already_replaced(fake: FakeResourceGuru) -> None:
    first = exchange_code(app_of(fake), fake.issue_code(), base_url=fake.base_url, now=lambda: NOW)
    vault = Vault()
    keeper = TokenKeeper(app_of(fake), first, on_refresh=vault, base_url=fake.base_url, now=lambda: NOW)
    new = keeper.refresh(first.access_token)
    assert keeper.refresh(first.access_token) == new  # the second caller gets the new one, no refresh
    assert len(vault.pairs) == 1
