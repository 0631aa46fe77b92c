"""The fake identity platform + Graph over TLS, and connectors built on the real msal and httpx."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.microsoft import ClientCertificate, ClientSecret, Credential, GraphAuth, GraphClient, MicrosoftDirectory
from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import TestTLS, make_tls

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "s3cret~value"


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake(tls: TestTLS) -> Iterator[FakeGraph]:
    with FakeGraph(tls, page_size=3, members_per_slice=2) as server:
        server.identity.apps[CLIENT_ID] = App(CLIENT_ID, secret=SECRET)
        yield server


@dataclass
class Sleeps:
    """An injected sleep: records what it was asked to wait, waits nothing."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_auth(fake: FakeGraph, tls: TestTLS, credential: Credential | None = None, **kwargs: str) -> GraphAuth:
    return GraphAuth(
        kwargs.get("tenant_id", fake.tenant_id),
        kwargs.get("client_id", CLIENT_ID),
        credential or ClientSecret(SECRET),
        authority_host=fake.authority_host,
        graph_url=fake.graph_url,
        verify=str(tls.ca_bundle),
    )


def make_graph(fake: FakeGraph, tls: TestTLS, sleeps: Sleeps, auth: GraphAuth | None = None) -> GraphClient:
    return GraphClient(
        auth or make_auth(fake, tls), base_url=fake.graph_url, verify=str(tls.ca_bundle), sleep=sleeps, backoff=0.5
    )


@pytest.fixture
def graph(fake: FakeGraph, tls: TestTLS, sleeps: Sleeps) -> Iterator[GraphClient]:
    client = make_graph(fake, tls, sleeps)
    yield client
    client.close()


@pytest.fixture
def reader(graph: GraphClient) -> MicrosoftDirectory:
    return MicrosoftDirectory(graph)


@dataclass(frozen=True)
class Certificate:
    """A self-signed app certificate: what an admin uploads to the app registration, and our credential."""

    certificate: x509.Certificate
    credential: ClientCertificate


def make_certificate() -> Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deskbridge")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()
    return Certificate(certificate, ClientCertificate(private_key_pem=pem, thumbprint=thumbprint))


def reference(name: str) -> Path:
    """A Graph sample payload from ../shared/reference/data/graph (skips when absent)."""
    from tests.conftest import shared_data

    return shared_data("graph", name)


# Calendars ------------------------------------------------------------------------------------

CALENDAR_USER = "u1"
CALENDAR_UPN = "ada@contoso.example"


@pytest.fixture
def calendar_graph(fake: FakeGraph, graph: GraphClient) -> GraphClient:
    """The Graph client, for an app granted Calendars.ReadWrite, and a mailbox for u1 (ada@contoso.example)."""
    fake.identity.apps[CLIENT_ID].permissions.add("Calendars.ReadWrite")
    fake.calendars.add_calendar(CALENDAR_USER, CALENDAR_UPN)
    return graph
