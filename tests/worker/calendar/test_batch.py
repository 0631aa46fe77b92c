"""Calendars synced in batches (one job per connection and up to jobs.BATCH calendars), through the real
connectors against the fake Graph and the fake Google."""

from __future__ import annotations

import json
from datetime import timedelta

import dramatiq
import pytest
from sqlalchemy import Engine, select, update

from store.columns import utcnow
from store.db import transaction
from store.models import Calendar, Connection, ConnectionStatus, ExternalEvent
from store.services import calendars
from sync.calendar import engine
from tests.conftest import BROKER
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import FakeGraph
from tests.worker.calendar.conftest import World, google_workspace, microsoft
from tests.worker.conftest import drain
from worker.calendar import batch, jobs, sync

DAY = (utcnow() + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)
ADA, BOB = "ada@contoso.example", "bob@contoso.example"


def counts(tallies: dict[int, engine.Tally | None], calendar_id: int) -> dict[str, int]:
    tally = tallies[calendar_id]
    assert tally is not None, f"calendar {calendar_id} did not sync"
    return tally.counts


def titles(world: World, calendar_id: int) -> set[str]:
    with world.factory() as session:
        return set(session.scalars(select(ExternalEvent.title).where(ExternalEvent.calendar_id == calendar_id)))


def test_a_batch_reads_every_calendar_with_one_sign_in_and_then_only_changes(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    ada, bob = world.calendar_id(ADA), world.calendar_id(BOB)
    graph.calendars.add_event("u1", "Standup", DAY, DAY + timedelta(minutes=15))
    graph.calendars.add_event(
        "u2", "In the office", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=8), categories=["Office"]
    )
    signed_in = graph.identity.token_requests

    tallies = batch.run(world.runtime, connection_id, [ada, bob], threads=1)

    assert graph.identity.token_requests == signed_in + 1  # one sign-in for the whole batch
    # Both mailboxes' listings were asked for in one JSON batch, none alone.
    assert graph.count("/v1.0/$batch", "POST") == 1
    for person in ("ada", "bob"):
        assert graph.count(f"/v1.0/users/{person}", "GET in $batch") == 1
        assert graph.count(f"/v1.0/users/{person}", "GET") == 0
    assert {calendar_id: tally.counts["seen"] for calendar_id, tally in tallies.items() if tally} == {ada: 1, bob: 1}
    assert titles(world, ada) == {"Standup"}
    assert titles(world, bob) == {"In the office"}
    for calendar_id in (ada, bob):
        calendar = world.calendar(calendar_id)
        assert calendar.status is ConnectionStatus.ACTIVE
        assert calendar.cursor
        assert calendar.last_synced_at
        assert calendar.sync_lease_until is None
    assert tallies[bob] is not None
    assert counts(tallies, bob)["booked"] == 1

    # Nothing changed for Ada, Bob's office day moved: Ada is only finished, Bob's booking follows.
    cursor = world.calendar(ada).cursor
    [office] = graph.calendars.calendar("u2").events.values()  # type: ignore[union-attr]
    moved = DAY + timedelta(days=2)
    graph.calendars.update_event("u2", office.id, start=moved, end=moved + timedelta(hours=8))

    tallies = batch.run(world.runtime, connection_id, [ada, bob])

    assert tallies[ada] is not None
    assert counts(tallies, ada)["changed"] == 0
    assert tallies[bob] is not None
    assert (counts(tallies, bob)["changed"], counts(tallies, bob)["moved"]) == (1, 1)
    assert world.calendar(ada).cursor != cursor  # a new deltaLink, kept although nothing changed
    assert world.calendar(ada).last_counts["seen"] == 0


def test_a_calendar_that_fails_does_not_stop_the_others(world: World, graph: FakeGraph) -> None:
    # Cy is in the directory but has no mailbox: Graph answers 404 for his calendar.
    graph.directory.add_user("u3", "cy@contoso.example", display_name="Cy", mail="cy@contoso.example")
    connection_id = microsoft(world, graph)
    ada, bob, cy = (world.calendar_id(f"{name}@contoso.example") for name in ("ada", "bob", "cy"))
    graph.calendars.add_event("u1", "Standup", DAY, DAY + timedelta(minutes=15))
    graph.calendars.add_event("u2", "Review", DAY, DAY + timedelta(hours=1))

    tallies = batch.run(world.runtime, connection_id, [ada, bob, cy])

    assert tallies[cy] is None
    assert titles(world, ada) == {"Standup"}
    assert titles(world, bob) == {"Review"}
    failed = world.calendar(cy)
    assert failed.status is ConnectionStatus.ACTION_REQUIRED
    assert failed.last_error
    assert "mailbox" in failed.last_error
    assert failed.sync_lease_until is None  # released: the poll may try again once an admin acts
    assert world.calendar(ada).status is ConnectionStatus.ACTIVE


def test_an_internal_error_on_one_calendar_keeps_the_others_progress(
    engine: Engine, world: World, graph: FakeGraph
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce column lengths: the bad event is stored there")
    connection_id = microsoft(world, graph)
    ada, bob = world.calendar_id(ADA), world.calendar_id(BOB)
    # A changeKey longer than the store keeps makes Ada's insert fail inside the batch's transaction.
    graph.calendars.add_event("u1", "Standup", DAY, DAY + timedelta(minutes=15), change_key="k" * 300)
    graph.calendars.add_event("u2", "Review", DAY, DAY + timedelta(hours=1))

    with pytest.raises(batch.BatchIncomplete) as raised:
        batch.run(world.runtime, connection_id, [ada, bob])

    assert raised.value.calendar_ids == [ada]
    assert titles(world, bob) == {"Review"}
    assert world.calendar(bob).status is ConnectionStatus.ACTIVE
    assert titles(world, ada) == set()
    failed = world.calendar(ada)
    assert failed.status is ConnectionStatus.ERROR
    assert failed.last_error == "internal error: DataError; it is retried"
    assert failed.cursor is None
    assert failed.sync_lease_until is None


def test_a_calendar_held_by_another_sync_is_skipped(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    ada, bob = world.calendar_id(ADA), world.calendar_id(BOB)
    graph.calendars.add_event("u1", "Standup", DAY, DAY + timedelta(minutes=15))
    graph.calendars.add_event("u2", "Review", DAY, DAY + timedelta(hours=1))
    with transaction(world.factory) as session:
        assert calendars.claim(session, ada)  # another worker is syncing Ada's calendar
        lease = session.get_one(Calendar, ada).sync_lease_until

    tallies = batch.run(world.runtime, connection_id, [ada, bob])

    assert tallies == {ada: None, bob: tallies[bob]}
    assert tallies[bob] is not None
    assert titles(world, ada) == set()  # untouched: the other sync owns it until its lease ends
    assert world.calendar(ada).sync_lease_until == lease
    assert world.calendar(ada).status is ConnectionStatus.SYNCING
    assert titles(world, bob) == {"Review"}
    # A calendar of another connection, or one that is gone, is left out the same way.
    assert batch.run(world.runtime, connection_id + 1000, [bob]) == {bob: None}
    assert batch.run(world.runtime, connection_id, [ada + 1000]) == {ada + 1000: None}


def test_a_revoked_app_is_noticed_by_the_next_job(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    ada, bob = world.calendar_id(ADA), world.calendar_id(BOB)
    assert all(batch.run(world.runtime, connection_id, [ada, bob]).values())
    cursors = {calendar_id: world.calendar(calendar_id).cursor for calendar_id in (ada, bob)}
    graph.identity.apps.clear()  # the app registration was deleted: its tokens must not be used again

    assert batch.run(world.runtime, connection_id, [ada, bob]) == {ada: None, bob: None}

    for calendar_id in (ada, bob):
        calendar = world.calendar(calendar_id)
        assert calendar.status is ConnectionStatus.ACTION_REQUIRED
        assert calendar.last_error
        assert "graph~secret" not in calendar.last_error
        assert calendar.cursor == cursors[calendar_id]


def test_google_calendars_in_a_batch(world: World, google: FakeGoogle) -> None:
    google.add_user("cy@acme.example", "Cy", notify=False)
    google.add_user("di@acme.example", "Di", notify=False)
    connection_id = google_workspace(world, google)
    cy, di = world.calendar_id("cy@acme.example"), world.calendar_id("di@acme.example")
    google.add_event("cy@acme.example", DAY, DAY + timedelta(minutes=30), "1:1")
    google.add_event("di@acme.example", DAY, DAY + timedelta(hours=1), "Planning")

    tallies = batch.run(world.runtime, connection_id, [cy, di])

    assert titles(world, cy) == {"1:1"}
    assert titles(world, di) == {"Planning"}
    assert all(tallies.values())
    google.add_event("di@acme.example", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=1), "Retro")

    tallies = batch.run(world.runtime, connection_id, [cy, di])

    assert tallies[cy] is not None
    assert counts(tallies, cy)["changed"] == 0
    assert titles(world, di) == {"Planning", "Retro"}


def test_a_long_round_is_applied_page_by_page(world: World, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    connection_id = microsoft(world, graph)
    ada = world.calendar_id(ADA)
    for hour in range(25):  # three pages of the fake's ten
        start = DAY + timedelta(days=hour // 8, hours=hour % 8)
        graph.calendars.add_event("u1", f"Slot {hour}", start, start + timedelta(minutes=30))
    monkeypatch.setattr(batch, "STREAM_EVENTS", 5)  # a setting of ours, so the fake need not list thousands

    tallies = batch.run(world.runtime, connection_id, [ada])

    assert tallies[ada] is not None
    assert counts(tallies, ada)["seen"] == 25
    assert len(titles(world, ada)) == 25
    assert world.calendar(ada).cursor


def test_the_poll_queues_a_job_per_connection(world: World, graph: FakeGraph, google: FakeGoogle) -> None:
    google.add_user("cy@acme.example", "Cy", notify=False)
    microsoft(world, graph)
    google_workspace(world, google)
    drain(BROKER, "calendar")  # first syncs
    with transaction(world.factory) as session:
        session.execute(update(Calendar).values(last_synced_at=utcnow() - timedelta(days=1)))
    BROKER.flush("calendar")

    queued = jobs.poll(world.runtime)

    queue = BROKER.queues["calendar"].queue
    messages = [dramatiq.Message.decode(data) for data in queue]
    assert queued == 4  # Ada, Bob; Cy and the fake Google's admin (a person with a calendar too)
    assert {message.actor_name for message in messages} == {"sync_calendars"}
    assert sorted(len(message.args[1]) for message in messages) == [2, 2]  # one job per connection
    assert jobs.poll(world.runtime) == 0  # asked for already: not queued twice
    drain(BROKER, "calendar")
    with world.factory() as session:
        synced = [row.last_synced_at for row in session.scalars(select(Calendar))]
        assert all(moment and moment > utcnow() - timedelta(minutes=1) for moment in synced)


def test_one_calendar_still_syncs_alone(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    ada = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Standup", DAY, DAY + timedelta(minutes=15))

    assert sync.run(world.runtime, ada) is not None
    assert titles(world, ada) == {"Standup"}


def test_a_token_about_to_expire_is_not_held(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    ada, bob = world.calendar_id(ADA), world.calendar_id(BOB)
    graph.identity.token_lifetime = 120  # inside the five minutes before expiry msal renews in
    signed_in = graph.identity.token_requests

    batch.run(world.runtime, connection_id, [ada, bob])

    # Every request asked for a token afresh (two calendars, a request each): none was held.
    assert graph.identity.token_requests - signed_in >= 2


def test_credentials_that_make_no_client_fail_every_calendar_and_release_them(world: World, google: FakeGoogle) -> None:
    google.add_user("cy@acme.example", "Cy", notify=False)
    connection_id = google_workspace(world, google)
    cy = world.calendar_id("cy@acme.example")
    with transaction(world.factory) as session:
        # Stored garbled (an old export restored by hand): not even JSON.
        connection = session.get_one(Connection, connection_id)
        connection.credentials_encrypted = world.runtime.secret_box.encrypt(
            json.dumps({"service_account_key": "{not json"})
        )

    with pytest.raises(batch.BatchIncomplete):
        batch.run(world.runtime, connection_id, [cy])

    calendar = world.calendar(cy)
    assert calendar.status is ConnectionStatus.ERROR
    assert calendar.last_error == "internal error: JSONDecodeError; it is retried"
    assert calendar.sync_lease_until is None  # not held: the poll (or the queue's retry) tries again
