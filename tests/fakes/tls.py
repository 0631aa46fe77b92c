"""A test certificate authority (trustme) and a server certificate for 127.0.0.1 and localhost.

Fakes serve TLS with `server_context()`; clients trust the CA through `ca_bundle` (a PEM file
path, what msal's requests session and httpx both accept as `verify=`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TestTLS:
    """A CA, the server certificate it issued, and the CA as a bundle file for clients."""

    __test__ = False  # not a test class, whatever its name says

    ca: trustme.CA
    server_cert: trustme.LeafCert
    ca_bundle: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the certificate for 127.0.0.1/localhost."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context trusting only the test CA."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def make_tls(directory: Path) -> TestTLS:
    """A new CA and server certificate; the CA bundle is written into `directory`."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    bundle = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return TestTLS(ca=ca, server_cert=server_cert, ca_bundle=bundle)
