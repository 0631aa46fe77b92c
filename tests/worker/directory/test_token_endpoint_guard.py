"""Issue 12, finding 2 as it was found: a Google connection whose service-account key names a
loopback `token_uri`. The production wiring's directory endpoints refuse private targets unless the
deployment allows them; the sync fails with the refusal as the connection's last_error (an admin's
to fix), and the listener receives nothing (before, it received the signed assertion three times,
and its answer was reflected in last_error)."""

from __future__ import annotations

import socket
import threading

from store.db import transaction
from store.models import ConnectionKind, ConnectionStatus
from store.services import connections
from sync.directory.readers import DirectoryEndpoints
from tests.fakes.google import FakeGoogle
from tests.worker.directory.conftest import Tenant
from worker import channels
from worker.directory import sync


def test_a_google_key_with_a_loopback_token_uri_sends_nothing(tenant: Tenant) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    offered: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                offered.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        with FakeGoogle() as google:
            key = {**google.service_account_info(), "token_uri": f"http://127.0.0.1:{listener.getsockname()[1]}/token"}
            with transaction(tenant.factory) as session:
                connection, _ = connections.create(
                    session,
                    tenant.runtime.secret_box,
                    tenant.organisation_id,
                    ConnectionKind.GOOGLE,
                    "Workspace",
                    settings={"admin_email": google.admin_email, "scope": {"org_units": ["/"], "groups": []}},
                    credentials={"service_account_key": key},
                )
                connection_id = connection.id
            endpoints = DirectoryEndpoints(google_api_url=google.base_url)  # private targets: not allowed
            worker_runtime = type(tenant.runtime)(**{**tenant.runtime.__dict__, "directory": endpoints})

            assert channels.ensure(worker_runtime, connection_id) == 0  # opening its push channels: refused
            assert sync.run(worker_runtime, connection_id) is None
            with tenant.factory() as session:
                stored = connections.get(session, tenant.organisation_id, connection_id)
                assert stored.status is ConnectionStatus.ACTION_REQUIRED
                assert stored.last_error is not None
                assert stored.last_error.startswith(
                    "the token endpoint (token_uri of the service-account key) is refused: "
                    "127.0.0.1 is a loopback address"
                )
            assert google.token_requests == 0
    finally:
        listener.close()
    assert offered == []
