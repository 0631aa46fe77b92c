"""Sign-in with msal against the fake identity platform: secret, certificate, caching, refusals."""

from __future__ import annotations

import pytest

from connectors.microsoft import ClientSecret, MicrosoftDirectory
from connectors.records import ConnectorError
from tests.connectors.microsoft.conftest import CLIENT_ID, SECRET, Sleeps, make_auth, make_certificate, make_graph
from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import TestTLS


def _read_all(reader: MicrosoftDirectory) -> int:
    return sum(len(page.users) for page in reader.read(None))


def test_secret_token_is_acquired_once_and_cached(fake: FakeGraph, tls: TestTLS, sleeps: Sleeps) -> None:
    fake.directory.add_user("u1", "ada@contoso.example", mail="ada@contoso.example")
    reader = MicrosoftDirectory(make_graph(fake, tls, sleeps))

    assert _read_all(reader) == 1
    assert _read_all(reader) == 1

    assert fake.identity.token_requests == 1
    assert fake.count(f"/{fake.tenant_id}/v2.0/.well-known/openid-configuration") == 1
    assert fake.count("/v1.0/users/delta") == 2


def test_certificate_credential_signs_a_client_assertion(fake: FakeGraph, tls: TestTLS, sleeps: Sleeps) -> None:
    cert = make_certificate()
    fake.identity.apps["cert-app"] = App("cert-app", certificate=cert.certificate)
    fake.directory.add_user("u1", "ada@contoso.example", mail=None)
    auth = make_auth(fake, tls, cert.credential, client_id="cert-app")

    assert _read_all(MicrosoftDirectory(make_graph(fake, tls, sleeps, auth))) == 1
    assert fake.identity.token_requests == 1


def test_certificate_not_registered_is_refused(fake: FakeGraph, tls: TestTLS) -> None:
    registered, other = make_certificate(), make_certificate()
    fake.identity.apps["cert-app"] = App("cert-app", certificate=registered.certificate)
    auth = make_auth(fake, tls, other.credential, client_id="cert-app")

    with pytest.raises(ConnectorError) as caught:
        auth.token()
    assert caught.value.action_required
    assert "invalid_client" in caught.value.message


def test_wrong_secret_needs_an_admin_and_never_shows_the_secret(fake: FakeGraph, tls: TestTLS) -> None:
    auth = make_auth(fake, tls, ClientSecret("wrong-secret-value"))

    with pytest.raises(ConnectorError) as caught:
        auth.token()
    error = caught.value
    assert error.action_required
    assert "invalid_client" in error.message
    assert "secret" in error.message
    assert "wrong-secret-value" not in error.message
    assert SECRET not in error.message
    assert "wrong-secret-value" not in repr(ClientSecret("wrong-secret-value"))


def test_unknown_application_needs_an_admin(fake: FakeGraph, tls: TestTLS) -> None:
    auth = make_auth(fake, tls, client_id="00000000-0000-0000-0000-000000000000")

    with pytest.raises(ConnectorError) as caught:
        auth.token()
    assert caught.value.action_required
    assert "unauthorized_client" in caught.value.message


def test_unknown_tenant_needs_an_admin(fake: FakeGraph, tls: TestTLS) -> None:
    auth = make_auth(fake, tls, tenant_id="no-such-tenant")

    with pytest.raises(ConnectorError) as caught:
        auth.token()
    assert caught.value.action_required
    assert "no-such-tenant" in caught.value.message
    assert "tenant id" in caught.value.message


def test_missing_graph_permission_is_named(fake: FakeGraph, tls: TestTLS, sleeps: Sleeps) -> None:
    fake.identity.apps[CLIENT_ID].permissions = {"User.Read.All"}
    fake.directory.add_user("u1", "ada@contoso.example", mail=None)
    reader = MicrosoftDirectory(make_graph(fake, tls, sleeps))

    with pytest.raises(ConnectorError) as caught:
        list(reader.read(None))
    assert caught.value.action_required
    assert "Group.Read.All" in caught.value.message
    assert "403" in caught.value.message


def test_untrusted_certificate_is_not_accepted(fake: FakeGraph, tls: TestTLS) -> None:
    auth = make_auth(fake, tls)
    auth._verify = True  # the system trust store does not know the test CA

    with pytest.raises(ConnectorError) as caught:
        auth.token()
    assert not caught.value.action_required
