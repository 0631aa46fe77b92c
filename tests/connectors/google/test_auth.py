"""Service-account tokens with domain-wide delegation: the real google-auth against the fake token endpoint."""

from __future__ import annotations

import dataclasses

import pytest

from connectors.google import GoogleDirectory, GoogleSettings
from connectors.google.auth import GROUP_SCOPE, SCOPES, USER_SCOPE, delegated_credentials
from connectors.records import ConnectorError
from tests.fakes.google import GOOGLE_TOKEN_AUDIENCE, FakeGoogle


def test_token_is_a_signed_jwt_grant_acting_as_the_admin(fake: FakeGoogle, settings: GoogleSettings) -> None:
    pages = list(GoogleDirectory(settings).read(None))

    assert pages[-1].last
    assert fake.token_requests == 1
    (claims,) = fake.grants  # the fake verified the RS256 signature against the key's public half
    assert claims["iss"] == fake.client_email
    assert claims["sub"] == fake.admin_email
    assert claims["aud"] == GOOGLE_TOKEN_AUDIENCE
    assert set(claims["scope"].split()) == set(SCOPES)


def test_token_is_cached_across_calls_and_rounds(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.add_users(5)
    directory = GoogleDirectory(settings, page_size=2)

    list(directory.read(None))
    list(directory.read("2024-01-01T00:00:00+00:00"))

    api_calls = [r for r in fake.requests if r.path.startswith("admin/")]
    assert len(api_calls) > 6
    assert fake.token_requests == 1


def test_token_near_its_end_is_refreshed(settings: GoogleSettings) -> None:
    # google-auth renews a token within 3 min 45 s of its end, so a 200 s token is renewed before each call.
    with FakeGoogle(token_ttl=200) as google:
        settings = dataclasses.replace(
            settings, service_account_info=google.service_account_info(), base_url=google.base_url
        )
        list(GoogleDirectory(settings).read(None))

        api_calls = [r for r in google.requests if r.path.startswith("admin/")]
        assert google.token_requests == len(api_calls) >= 3


def test_token_google_forgot_is_replaced_on_401(fake: FakeGoogle, settings: GoogleSettings) -> None:
    directory = GoogleDirectory(settings)
    list(directory.read(None))
    fake.tokens.clear()  # revoked at Google's end before it expired

    pages = list(directory.read(None))

    assert pages[-1].last
    assert fake.token_requests == 2


def test_subject_not_in_domain_needs_an_admin(fake: FakeGoogle, settings: GoogleSettings) -> None:
    settings = dataclasses.replace(settings, admin_email="nobody@example.com")

    with pytest.raises(ConnectorError) as refused:
        list(GoogleDirectory(settings).read(None))

    assert refused.value.action_required
    assert "invalid_grant" in refused.value.message
    assert "nobody@example.com" in refused.value.message
    assert fake.grants == []


def test_scope_not_delegated_names_client_id_and_scopes(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.delegated_scopes = {USER_SCOPE}  # the group scope was never authorised

    with pytest.raises(ConnectorError) as refused:
        list(GoogleDirectory(settings).read(None))

    message = refused.value.message
    assert refused.value.action_required
    assert "unauthorized_client" in message
    assert "domain-wide delegation" in message
    assert fake.client_id in message
    assert GROUP_SCOPE in message


def test_no_delegation_at_all(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.delegated_scopes = set()

    with pytest.raises(ConnectorError) as refused:
        list(GoogleDirectory(settings).read(None))

    assert refused.value.action_required
    assert "Manage domain-wide delegation" in refused.value.message


def test_subject_who_is_no_admin_is_refused_by_the_api(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.add_user("will@example.com", "Will", "Member")
    settings = dataclasses.replace(settings, admin_email="will@example.com")

    with pytest.raises(ConnectorError) as refused:
        list(GoogleDirectory(settings).read(None))

    assert refused.value.action_required
    assert "will@example.com" in refused.value.message
    assert "admin" in refused.value.message
    assert fake.token_requests == 1  # the token was fine; the API said no


def test_key_unknown_to_google(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.rotate_key()  # the key we hold was deleted in Google Cloud

    with pytest.raises(ConnectorError) as refused:
        list(GoogleDirectory(settings).read(None))

    assert refused.value.action_required
    assert "key" in refused.value.message


def test_messages_never_carry_the_key(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.delegated_scopes = set()
    key = settings.service_account_info["private_key"]
    secret_line = key.splitlines()[1]

    with pytest.raises(ConnectorError) as refused:
        list(GoogleDirectory(settings).read(None))

    assert secret_line not in refused.value.message
    assert secret_line not in str(refused.value)
    assert secret_line not in repr(settings)


def test_a_key_that_is_no_service_account_key(settings: GoogleSettings) -> None:
    info = dict(settings.service_account_info)
    del info["client_email"]
    with pytest.raises(ValueError, match="client_email"):
        delegated_credentials(info, "admin@example.com")

    info = dict(settings.service_account_info, private_key="-----BEGIN PRIVATE KEY-----\nnot a key\n")
    with pytest.raises(ValueError, match="cannot be read") as refused:
        delegated_credentials(info, "admin@example.com")
    assert "not a key" not in str(refused.value)


def test_connector_with_an_unusable_key_asks_the_admin(settings: GoogleSettings) -> None:
    info = dict(settings.service_account_info)
    del info["private_key"]

    with pytest.raises(ConnectorError) as refused:
        GoogleDirectory(dataclasses.replace(settings, service_account_info=info))

    assert refused.value.action_required
    assert "private_key" in refused.value.message
