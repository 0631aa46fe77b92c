"""`deskbridge sync`: CSV imports with a dry-run plan, syncs run in this process, and failures shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from deskbridge.wiring import make_secret_box
from store.columns import utcnow
from store.db import transaction
from store.models import (
    Booking,
    BookingStatus,
    Connection,
    ConnectionStatus,
    ExternalEvent,
    Member,
    MemberStatus,
    OutboxEvent,
)
from store.services import bookings, connections, desks, members, organisations
from tests.cli.conftest import count, failed, ok, table_rows
from tests.conftest import BROKER
from tests.connectors.csv.test_exports import ENTRA_HEADER, entra_row
from tests.fakes.google import FakeGoogle
from tests.fakes.ics import FakeIcsServer
from tests.worker.webhooks.conftest import free_port
from worker import runtime
from worker.webhooks import limits

PEOPLE = "email,name,teams,active\nada@acme.example,Ada,Ops,true\nbob@acme.example,Bob,Ops;Design,true\n"


@pytest.fixture(autouse=True)
def process_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`sync` builds the runtime as `serve` does (broker, runtime, limits): give the suite its own back."""
    monkeypatch.setattr(runtime, "_runtime", runtime._runtime)
    monkeypatch.setattr(limits, "_limits", limits._limits)
    yield
    dramatiq.set_broker(BROKER)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return name  # the CLI runs in tmp_path


def states(factory: sessionmaker[Session]) -> dict[str, MemberStatus]:
    with factory() as session:
        return {row.email: row.status for row in session.scalars(select(Member))}


def connection(factory: sessionmaker[Session], connection_id: int = 1) -> Connection:
    with factory() as session:
        return session.get_one(Connection, connection_id)


def auto_accept(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        organisations.update_settings(
            session, organisations.get_by_slug(session, "acme"), directory_policy="auto_accept"
        )


def test_a_dry_run_prints_the_plan_and_changes_nothing(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    before = (count(factory, OutboxEvent), count(factory, Member))

    result = ok("sync", "1", "--file", write(tmp_path, "people.csv", PEOPLE), "--dry-run")

    assert "Dry run of people.csv into 'CSV': nothing was changed" in result.stdout
    assert table_rows(result.stdout) == [["invited", "ada@acme.example"], ["invited", "bob@acme.example"]]
    assert "Counts: invited 2, teams changed 2." in result.stdout
    assert (count(factory, OutboxEvent), count(factory, Member)) == before
    assert connection(factory).last_synced_at is None


def test_an_import_then_a_file_without_someone_removes_them(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    auto_accept(factory)
    ok("connect", "csv")
    first = ok("sync", "1", "--file", write(tmp_path, "people.csv", PEOPLE))
    assert "Imported people.csv into 'CSV' (2 rows):" in first.stdout
    assert table_rows(first.stdout) == [["added", "ada@acme.example"], ["added", "bob@acme.example"]]
    start = utcnow() + timedelta(days=1)
    with transaction(factory) as session:
        bob = members.get_by_email(session, 1, "bob@acme.example")
        desk = desks.create(session, 1, "D1")
        booking_id = bookings.create(session, bob, start=start, end=start + timedelta(hours=4), desk_id=desk.id).id

    plan = ok("sync", "1", "--file", write(tmp_path, "next.csv", "email,name\nada@acme.example,Ada\n"), "--dry-run")
    assert table_rows(plan.stdout) == [["removed", "bob@acme.example"]]
    assert states(factory)["bob@acme.example"] is MemberStatus.ACTIVE

    done = ok("sync", "1", "--file", "next.csv")

    assert table_rows(done.stdout) == [["removed", "bob@acme.example"]]
    assert states(factory) == {"ada@acme.example": MemberStatus.ACTIVE, "bob@acme.example": MemberStatus.REMOVED}
    with factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
    row = connection(factory)
    assert (row.status, row.last_counts["removed"]) == (ConnectionStatus.ACTIVE, 1)
    again = ok("sync", "1", "--file", "next.csv")
    assert "Nobody changed." in again.stdout
    assert "Counts: nothing to do." in again.stdout


def test_a_file_with_bad_rows_names_them_and_imports_nothing(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    before = count(factory, OutboxEvent)
    name = write(tmp_path, "bad.csv", "email,active\nada@acme.example,true\nbob@,true\ncarol@acme.example,maybe\n")

    for extra in ([], ["--dry-run"]):
        result = failed("sync", "1", "--file", name, *extra)
        assert "bad.csv: line 3: 'bob@' is not an email address" in result.stderr
        assert "bad.csv: line 4: active must be true/false" in result.stderr
        assert "2 bad row(s) in bad.csv; nothing was imported." in result.stderr
    assert count(factory, Member) == 0
    assert count(factory, OutboxEvent) == before


def test_a_long_import_shows_progress_and_ends_with_a_summary(
    factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    people = "email,name\n" + "".join(f"p{n:03}@acme.example,Person {n}\n" for n in range(60))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr drawn as a terminal: the progress bar shows

    result = ok("sync", "1", "--file", write(tmp_path, "many.csv", people), "--dry-run")

    assert "60/60" in result.stderr  # the bar's last state: everyone decided
    assert table_rows(result.stdout) == [
        ["invited", "60", "p000@acme.example, p001@acme.example, p002@acme.example, … (57 more)"]
    ]
    assert "--details prints the full table, --output FILE writes it" in result.stdout
    assert "Counts: invited 60." in result.stdout


def test_details_print_everyone_and_output_writes_them(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    people = "email\n" + "".join(f"p{n:03}@acme.example\n" for n in range(40))
    name = write(tmp_path, "many.csv", people)

    detailed = ok("sync", "1", "--file", name, "--dry-run", "--details")
    written = ok("sync", "1", "--file", name, "--dry-run", "--output", "plan.csv")

    assert table_rows(detailed.stdout) == [["invited", f"p{n:03}@acme.example"] for n in range(40)]
    assert "Wrote 40 row(s) to plan.csv." in written.stdout
    lines = (tmp_path / "plan.csv").read_text().splitlines()
    assert lines == ["action,person", *(f"invited,p{n:03}@acme.example" for n in range(40))]


def test_a_member_added_by_hand_is_shown_as_linked(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "ada@acme.example", "--name", "A. L.")
    ok("connect", "csv")

    result = ok("sync", "1", "--file", write(tmp_path, "people.csv", PEOPLE))

    assert table_rows(result.stdout) == [["invited", "bob@acme.example"], ["linked", "ada@acme.example"]]
    assert "linked 1" in result.stdout
    with factory() as session:
        assert session.scalars(select(Member.display_name).where(Member.email == "ada@acme.example")).one() == "Ada"


def test_the_entra_download_as_downloaded_says_who_it_skips(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    lines = [
        ENTRA_HEADER,
        entra_row("ada@acme.example", "Ada Lovelace", "ada@acme.example"),
        entra_row("scanner@acme.onmicrosoft.example", "Scanner", ""),
    ]
    (tmp_path / "entra.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())

    result = ok("sync", "1", "--file", "entra.csv", "--dry-run")

    assert table_rows(result.stdout) == [
        ["invited", "ada@acme.example"],
        ["skipped", "scanner@acme.onmicrosoft.example"],
    ]
    assert "Note: 1 account(s) (scanner@acme.onmicrosoft.example) skipped: no mailbox" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "1", "--dry-run"], "--dry-run, --details and --output need --file"),
        (["sync", "1", "--file", "missing.csv"], "cannot read missing.csv"),
        (["sync", "2", "--file", "people.csv"], "a scim connection; only csv ones take files"),
        (["sync", "9", "--file", "people.csv"], "no connection 9"),
        (["sync", "9"], "no connection 9"),
    ],
)
def test_sync_refuses(factory: sessionmaker[Session], tmp_path: Path, args: list[str], message: str) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    ok("connect", "scim")
    write(tmp_path, "people.csv", PEOPLE)
    before = count(factory, OutboxEvent)

    assert message in failed(*args).stderr
    assert count(factory, Member) == 0
    assert count(factory, OutboxEvent) == before


def test_another_organisations_connection_is_unknown(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("org", "create", "Globex")
    ok("connect", "csv", "--org", "globex")
    assert "no connection 1" in failed("sync", "1", "--org", "acme", "--file", write(tmp_path, "p.csv", PEOPLE)).stderr


def test_syncing_a_csv_connection_decides_everyone_again_after_a_scope_change(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    ok("sync", "1", "--file", write(tmp_path, "p.csv", PEOPLE + "carol@other.example,Carol,,\n"))
    with transaction(factory) as session:
        row = session.get_one(Connection, 1)
        connections.update_connection(
            session, make_secret_box(get_settings()), row, settings={"scope": {"domains": ["acme.example"]}}
        )

    result = ok("sync", "1")

    assert "Synced 'CSV' (csv); status active." in result.stdout
    assert table_rows(result.stdout) == [["removed", "carol@other.example"]]
    assert states(factory)["carol@other.example"] is MemberStatus.REMOVED
    row = connection(factory)
    assert (row.status, row.last_counts["removed"], row.last_synced_at is not None) == (
        ConnectionStatus.ACTIVE,
        1,
        True,
    )


def test_syncing_a_scim_connection_with_nothing_pushed_yet(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("connect", "scim")

    result = ok("sync", "1")

    assert "Synced 'SCIM' (scim); status active." in result.stdout
    assert "Nobody changed." in result.stdout
    assert connection(factory).last_synced_at is not None


def test_a_connector_failure_is_shown_and_kept_on_the_connection(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.setenv("ENTRA_SECRET", "secret-value-never-shown")
    # A sign-in endpoint nobody listens on: the connector's refusal without reaching the internet.
    monkeypatch.setenv("DESKBRIDGE_MICROSOFT_AUTHORITY", f"https://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    ok("connect", "microsoft", "--tenant-id", "t", "--client-id", "c", "--client-secret-env", "ENTRA_SECRET")

    result = failed("sync", "1")

    row = connection(factory)
    assert row.status in (ConnectionStatus.ERROR, ConnectionStatus.ACTION_REQUIRED)
    assert row.last_error
    assert f"the sync of 'Microsoft Entra ID' failed (status {row.status.value}): {row.last_error}" in result.stderr
    assert "secret-value-never-shown" not in result.output
    listing = table_rows(ok("connections").stdout)
    assert listing[0][3] == row.status.value
    assert row.last_error.startswith(listing[0][5])  # the table wraps a long message over lines


def test_a_sync_held_elsewhere_is_reported(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("connect", "scim")
    with transaction(factory) as session:
        assert connections.claim(session, 1)

    assert "another sync of 'SCIM' is running" in failed("sync", "1").stderr


FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:standup@example.com\r\n"
    "DTSTAMP:20300101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_syncing_an_ics_connection_reads_its_feed(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    start = (utcnow() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    body = FEED.format(start=f"{start:%Y%m%dT%H%M%SZ}", end=f"{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}")
    monkeypatch.setenv("DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS", "true")  # the feed is on loopback
    get_settings.cache_clear()
    ok("org", "create", "Acme")
    with FakeIcsServer() as feeds:
        feeds.serve("/team.ics?token=s3cret", body.encode())
        ok("connect", "ics", "--url", feeds.url("/team.ics?token=s3cret"))

        result = ok("sync", "1")

    assert "status active" in result.stdout
    assert "s3cret" not in result.output
    with factory() as session:
        assert session.scalars(select(ExternalEvent.title)).all() == ["Standup"]
    assert connection(factory).status is ConnectionStatus.ACTIVE


def test_a_plan_is_printed_then_applied_or_found_stale(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    ok("sync", "1", "--file", write(tmp_path, "people.csv", PEOPLE))
    ok("connection", "set", "1", "--set", 'scope={"domains": ["else.example"]}', "--set", 'removal_limit={"people": 5}')

    made = ok("sync", "1", "--plan")

    assert "Plan of a sync of 'CSV' (nothing was changed):" in made.stdout
    assert [row[:2] for row in table_rows(made.stdout)] == [
        ["removed", "ada@acme.example"],
        ["removed", "bob@acme.example"],
    ]
    plan_id = next(word for word in made.stdout.split() if word.startswith("plan_"))
    assert states(factory)["ada@acme.example"] is MemberStatus.INVITED
    assert f"Plan {plan_id}:" in ok("plan", "show", "1", plan_id).stdout

    applied = ok("plan", "apply", "1", plan_id)
    assert f"Applied {plan_id}: removed 2, teams changed 2." in applied.stdout
    assert "Team Ops: -2" in made.stdout
    assert states(factory)["ada@acme.example"] is MemberStatus.REMOVED
    assert "was applied" in failed("plan", "apply", "1", plan_id).stderr
    assert "no plan plan_nope" in failed("plan", "show", "1", "plan_nope").stderr


def test_a_held_plan_is_rejected_from_the_command_line(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    ok("connect", "csv")
    ok("connection", "set", "1", "--set", 'removal_limit={"people": 0, "percent": 0}')
    ok("sync", "1", "--file", write(tmp_path, "people.csv", PEOPLE))
    ok("sync", "1", "--file", write(tmp_path, "fewer.csv", "email,name\nada@acme.example,Ada\n"))
    held = connection(factory)
    assert held.status is ConnectionStatus.REMOVALS_HELD
    assert held.held_plan_id is not None

    rejected = ok("plan", "reject", "1", held.held_plan_id)

    assert f"Rejected {held.held_plan_id}: 1 people stay." in rejected.stdout
    assert states(factory)["bob@acme.example"] is MemberStatus.INVITED
    assert connection(factory).status is ConnectionStatus.ACTIVE


def test_one_person_read_now_with_email(
    factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGoogle() as google:
        google.add_user("cy@acme.example", "Cy", notify=False)
        monkeypatch.setenv("DESKBRIDGE_GOOGLE_API_URL", google.base_url)
        get_settings.cache_clear()
        ok("org", "create", "Acme")
        auto_accept(factory)
        key_file = tmp_path / "sa.json"
        key_file.write_text(json.dumps(google.service_account_info()))
        ok("connect", "google", "--admin-email", google.admin_email, "--key-file", str(key_file))

        result = ok("sync", "1", "--email", "cy@acme.example")

        assert "cy@acme.example is in the directory of 'Google Workspace', in scope; member: active." in result.stdout
        assert "added 1" in result.stdout
        assert states(factory) == {"cy@acme.example": MemberStatus.ACTIVE}
        nobody = failed("sync", "1", "--email", "nobody@acme.example")
        assert "nobody@acme.example is not in the directory of connection 1" in nobody.stderr
        google.fail(400)
        refused = failed("sync", "1", "--email", "cy@acme.example")
        assert "nothing was changed" in refused.stderr
    assert "--email reads one person" in failed("sync", "1", "--email", "a@b.example", "--dry-run").stderr
    ok("connect", "csv")
    assert "google and microsoft connections can" in failed("sync", "2", "--email", "a@b.example").stderr
