"""A client generated from /openapi.json by a real generator (openapi-python-client) works against the
served app (item 1 of the integrator's issue): the generator takes the document without a warning, and
the generated package, authenticated by the declared security schemes, lists desks, books, lists
bookings and calls WiggleDesk-compatible routes (a multipart invitation among them)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.served import serve
from tests.conftest import Org

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "deskbridge_generated_client"


@pytest.fixture
def generated(client: TestClient, tmp_path: Path) -> Any:
    """The client package generated from the app's own document, imported; removed afterwards."""
    spec = tmp_path / "openapi.json"
    spec.write_bytes(client.get("/openapi.json").content)
    run = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none", "--output-path", str(tmp_path / PACKAGE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # Every schema and operation made it into the client: the generator drops what it cannot read, loudly.
    assert "WARNING" not in run.stdout, run.stdout
    assert "Unable to" not in run.stdout, run.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        yield _Package(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class _Package:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, module: str) -> ModuleType:
        return importlib.import_module(f"{self.name}.{module}")


def test_a_generated_client_books_and_lists(client: TestClient, generated: Any, org: Org) -> None:
    package, models = generated("client"), generated("models")
    desks_api = generated("api.desks.create_desk_v1_desks_post")
    list_desks = generated("api.desks.list_desks_v1_desks_get")
    create_booking = generated("api.bookings.create_booking_v1_bookings_post")
    list_bookings = generated("api.bookings.list_bookings_v1_bookings_get")
    my_bookings = generated("api.wiggle_desk_compatible.my_bookings_api_bookings_get")
    invite = generated("api.wiggle_desk_compatible.create_membership_invitation_api_create_membership_invitation_post")
    # The operations behind a token take only an authenticated client: the generator read their security.
    assert "client: AuthenticatedClient," in inspect.getsource(list_desks.sync)
    assert "client: AuthenticatedClient | Client," in inspect.getsource(
        generated("api.health.healthz_healthz_get").sync
    )
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)

    with serve(client.app) as url:  # type: ignore[arg-type]
        # WiggleDesk's `Token` scheme for the admin, `Bearer` for the member: both are declared.
        admin = package.AuthenticatedClient(base_url=url, token=org.admin_token, prefix="Token")
        member = package.AuthenticatedClient(base_url=url, token=org.member_token)  # prefix defaults to Bearer
        anonymous = package.Client(base_url=url)

        desk = desks_api.sync(client=admin, body=models.DeskIn(label="11"))
        assert isinstance(desk, models.DeskOut), desk
        listed = list_desks.sync(client=member)
        assert [d.label for d in listed.data] == ["11"]

        booking = create_booking.sync(
            client=member,
            body=models.BookingIn(start=start, end=start + timedelta(hours=8), desk_id=desk.id, details="At 11"),
        )
        assert isinstance(booking, models.BookingOut), booking
        assert booking.start == start
        mine = list_bookings.sync(client=member)
        assert [b.id for b in mine.data] == [booking.id]

        page = my_bookings.sync(client=member)
        assert isinstance(page, models.BookingPage), page
        assert [(r.event_id, r.event_desk, r.event_details) for r in page.results] == [(str(booking.id), "11", "At 11")]
        invited = invite.sync(client=admin, body=models.MembershipBody(email_invited="new@example.com"))
        assert isinstance(invited, models.MembershipReply), invited
        assert invited.email_invited == "new@example.com"

        refused = list_desks.sync_detailed(client=anonymous)
        assert refused.status_code == 401
        assert isinstance(refused.parsed, models.Problem)
        assert httpx.get(f"{url}/v1/desks", headers={"Authorization": f"Bearer {org.member_token}"}).status_code == 200
