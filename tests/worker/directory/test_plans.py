"""Plans and held removals on both stores: a plan is what the sync then does; a big removal is held,
then approved or rejected; removals one by one add up over the hour; a stale plan is replaced."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.records import DirectoryGroup, DirectoryPage, DirectoryUser, RemovedUser
from store.columns import utcnow
from store.db import transaction
from store.errors import Conflict
from store.models import (
    ApiToken,
    Booking,
    BookingStatus,
    Connection,
    ConnectionKind,
    ConnectionRemoval,
    ConnectionStatus,
    FollowUp,
    Member,
    MemberStatus,
    OutboxEvent,
    PlanStatus,
    SyncPlan,
    TeamMembership,
)
from store.secret_box import SecretBox
from store.services import bookings, connections, desks, follow_ups, members, organisations, restores, tokens
from store.services import plans as stored
from sync.directory import engine, plans
from sync.directory.engine import apply_now, apply_round, redecide_everyone
from sync.directory.plans import Source
from tests.conftest import QUEUE, Org, events, make_org
from worker import runtime
from worker.directory import held_mail
from worker.mailers.folder import FolderMailer
from worker.webhooks.sender import make_client

BOX = SecretBox([SecretBox.generate_key()])


def user(uid: str, name: str = "", domain: str = "acme.example", **fields: object) -> DirectoryUser:
    values: dict[str, object] = {"username": f"{uid}@{domain}", "email": f"{uid}@{domain}"}
    values.update(fields)
    return DirectoryUser(external_id=uid, display_name=name or uid.title(), **values)  # type: ignore[arg-type]


def full(*users: DirectoryUser, groups: tuple[DirectoryGroup, ...] = ()) -> list[DirectoryPage]:
    return [DirectoryPage(users=users, groups=groups, full_users=True, full_groups=True, cursor="c", last=True)]


@pytest.fixture
def acme(session_factory: sessionmaker[Session]) -> Org:
    org = make_org(session_factory)
    with transaction(session_factory) as session:
        organisation = session.get_one(type(org.organisation), org.organisation.id)
        organisations.update_settings(session, organisation, directory_policy="auto_accept")
    return org


def connect(factory: sessionmaker[Session], org: Org, **settings: object) -> int:
    with transaction(factory) as session:
        connection, _ = connections.create(
            session,
            BOX,
            org.organisation.id,
            ConnectionKind.MICROSOFT,
            "Entra ID",
            settings={"tenant_id": "t", "client_id": "c", "team_groups": ["*"], **settings},
            credentials={"client_secret": "s3cret"},
        )
        return connection.id


def set_settings(factory: sessionmaker[Session], connection_id: int, **settings: object) -> None:
    with transaction(factory) as session:
        connections.update_connection(session, BOX, session.get_one(Connection, connection_id), settings=settings)


def states(factory: sessionmaker[Session], org: Org) -> dict[str, MemberStatus]:
    with factory() as session:
        rows = session.scalars(select(Member).where(Member.organisation_id == org.organisation.id))
        return {row.email: row.status for row in rows}


def make_plan(factory: sessionmaker[Session], connection_id: int, source: Source) -> SyncPlan:
    with transaction(factory) as session:
        plan = plans.make(session, connection_id, source)
        session.flush()
        session.expunge(plan)
        return plan


def shown(plan: SyncPlan) -> dict[str, list[str]]:
    return {action: [item["email"] for item in items] for action, items in plans.people_of(plan).items()}


def test_a_plan_is_what_the_sync_then_does_and_changes_nothing(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme)
    ops = DirectoryGroup("g-ops", "Ops", members=frozenset({"alice", "bob"}))
    apply_round(session_factory, connection_id, full(user("alice"), user("bob"), user("carol"), groups=(ops,)))
    with transaction(session_factory) as session:  # someone added by hand, whom the directory will link
        members.add(session, acme.organisation.id, "dave@acme.example")
    ops2 = DirectoryGroup("g-ops", "Ops", members=frozenset({"alice", "dave", "erin"}))
    pages = full(
        user("alice", "Alice Liddell"),  # renamed
        user("carol", active=False),  # leaves
        user("dave"),  # linked
        user("erin"),  # new
        groups=(ops2,),
    )  # bob is gone from the listing
    before = [event.id for event in events(session_factory, acme.organisation.id)]

    plan = make_plan(session_factory, connection_id, Source(pages))

    assert [event.id for event in events(session_factory, acme.organisation.id)] == before
    assert states(session_factory, acme)["bob@acme.example"] is MemberStatus.ACTIVE
    assert shown(plan) == {
        "added": ["erin@acme.example"],
        "linked": ["dave@acme.example"],
        "updated": ["alice@acme.example"],
        "removed": ["bob@acme.example", "carol@acme.example"],
    }
    [team] = plan.changes["teams"]
    assert (team["team"], team["added"], team["removed"]) == (
        "Ops",
        ["dave@acme.example", "erin@acme.example"],
        ["bob@acme.example"],
    )
    assert plan.counts["teams_changed"] == 1

    tally, _ = apply_round(session_factory, connection_id, pages)

    assert {action: names for action, names in tally.people.items() if names} == shown(plan)
    assert tally.counts["teams_changed"] == plan.counts["teams_changed"]


def test_a_removal_lists_the_future_bookings_it_cancels(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("alice"), user("bob")))
    start = utcnow() + timedelta(days=1)
    with transaction(session_factory) as session:
        desk = desks.create(session, acme.organisation.id, "D1")
        alice = members.get_by_email(session, acme.organisation.id, "alice@acme.example")
        booking = bookings.create(session, alice, start=start, end=start + timedelta(hours=8), desk_id=desk.id)
        booking_id, desk_id = booking.id, desk.id

    plan = make_plan(session_factory, connection_id, Source(full(user("bob"))))

    [removed] = plans.people_of(plan)["removed"]
    assert removed["email"] == "alice@acme.example"
    assert [(item["booking_id"], item["desk_id"]) for item in removed["bookings"]] == [(booking_id, desk_id)]
    assert plan.counts["bookings_cancelled"] == 1
    with session_factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.BOOKED


def test_applying_a_plan_applies_it_and_a_stale_one_gives_a_fresh_plan(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("alice"), user("bob")))
    planned = full(user("alice"), user("bob"), user("carol"))
    plan = make_plan(session_factory, connection_id, Source(planned))
    moved = full(user("alice"), user("carol"))  # bob left since

    with transaction(session_factory) as session:
        outcome = plans.apply(session, session.get_one(SyncPlan, plan.id), Source(moved))
        fresh = outcome.fresh
        assert not outcome.applied
        assert fresh is not None
        fresh_id = fresh.public_id
        assert shown(fresh) == {"added": ["carol@acme.example"], "removed": ["bob@acme.example"]}
    assert states(session_factory, acme).get("carol@acme.example") is None
    with session_factory() as session:
        stale = session.get_one(SyncPlan, plan.id)
        assert (stale.status, stale.replaced_by) == (PlanStatus.STALE, fresh_id)
        with pytest.raises(Conflict):
            stored.check_open(stale)

    with transaction(session_factory) as session:
        again = stored.get(session, acme.organisation.id, connection_id, fresh_id)
        outcome = plans.apply(session, again, Source(moved))
        assert outcome.applied
        assert outcome.tally.people["added"] == ["carol@acme.example"]
    assert states(session_factory, acme)["bob@acme.example"] is MemberStatus.REMOVED
    assert states(session_factory, acme)["carol@acme.example"] is MemberStatus.ACTIVE


def test_an_expired_or_foreign_plan_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme)
    other = make_org(session_factory, "Other")
    plan = make_plan(session_factory, connection_id, Source(full(user("alice"))))
    with session_factory() as session:
        assert stored.get(session, acme.organisation.id, connection_id, plan.public_id).id == plan.id
        for organisation_id, chosen, public_id, when in (
            (other.organisation.id, connection_id, plan.public_id, None),
            (acme.organisation.id, connection_id + 1, plan.public_id, None),
            (acme.organisation.id, connection_id, "plan_unknown", None),
            (acme.organisation.id, connection_id, plan.public_id, utcnow() + timedelta(hours=2)),
        ):
            with pytest.raises(Exception, match="plan"):
                stored.get(session, organisation_id, chosen, public_id, now=when)


def counted(found: dict[str, MemberStatus], domain: str, status: MemberStatus) -> int:
    return sum(1 for email, state in found.items() if email.endswith(domain) and state is status)


def held_events(factory: sessionmaker[Session], org: Org) -> list[OutboxEvent]:
    return [event for event in events(factory, org.organisation.id) if event.type == "connection.removals_held"]


def thousand(domain: str = "acme.example") -> list[DirectoryUser]:
    return [user(f"p{index:04}", domain="acme.example" if index < 200 else domain) for index in range(1000)]


@pytest.fixture
def mail_runtime(session_factory: sessionmaker[Session], tmp_path: Path) -> runtime.Runtime:
    worker_runtime = runtime.Runtime(
        session_factory,
        FolderMailer(tmp_path / "mail"),
        "https://deskbridge.example",
        "deskbridge <no-reply@deskbridge.test>",
        secret_box=BOX,
        webhook_client=make_client(allow_private=True),
        queue=QUEUE,
    )
    runtime.configure(worker_runtime)
    return worker_runtime


def test_a_scope_change_that_would_remove_80_percent_is_held_then_approved_then_undone(
    session_factory: sessionmaker[Session], acme: Org, mail_runtime: runtime.Runtime, tmp_path: Path
) -> None:
    connection_id = connect(session_factory, acme)
    people = thousand(domain="corp.example")
    apply_round(session_factory, connection_id, full(*people))
    assert sum(1 for state in states(session_factory, acme).values() if state is MemberStatus.ACTIVE) == 1002
    start = utcnow() + timedelta(days=3)
    with transaction(session_factory) as session:  # one of the people leaving has a booking and a token
        desk = desks.create(session, acme.organisation.id, "D1")
        leaving = members.get_by_email(session, acme.organisation.id, "p0999@corp.example")
        booking_id = bookings.create(session, leaving, start=start, end=start + timedelta(hours=8), desk_id=desk.id).id
        members.update(session, leaving, api_access=True)
        token_id = tokens.create(session, leaving)[0].id
    # The scope narrows to one domain: 800 of 1,000 would go. A rename and a newcomer come with it.
    set_settings(session_factory, connection_id, scope={"domains": ["acme.example"]})
    listing = [user("p0000", "Pat Renamed"), *people[1:], user("newcomer")]

    tally, _ = apply_round(session_factory, connection_id, full(*listing))

    assert (tally.counts["held"], tally.counts["removed"]) == (800, 0)
    assert (tally.counts["added"], tally.counts["updated"]) == (1, 1)
    now = states(session_factory, acme)
    assert now["newcomer@acme.example"] is MemberStatus.ACTIVE
    assert (
        sum(1 for email, state in now.items() if email.endswith("@corp.example") and state is MemberStatus.ACTIVE)
        == 800
    )
    with session_factory() as session:  # nothing about the held people changed
        assert session.get_one(Booking, booking_id).status is BookingStatus.BOOKED
        assert session.get_one(ApiToken, token_id).revoked_at is None
        connection = session.get_one(Connection, connection_id)
        assert connection.status is ConnectionStatus.REMOVALS_HELD
        plan = stored.held_plan(session, connection)
        assert plan is not None
        assert plan.status is PlanStatus.HELD
        assert plan.counts["removed"] == 800
        assert plan.counts["bookings_cancelled"] == 1
        plan_id = plan.public_id
        assert session.get(FollowUp, (follow_ups.REMOVALS_HELD_MAIL, connection_id)) is not None
    held = [
        event for event in events(session_factory, acme.organisation.id) if event.type == "connection.removals_held"
    ]
    assert [event.data["plan_id"] for event in held] == [plan_id]
    assert (held[0].data["removals"], held[0].data["limit"], len(held[0].data["people"])) == (800, 50, 100)

    # The admins are emailed once (a second job finds nothing owed).
    assert held_mail.tell_admins(mail_runtime, connection_id) == 1
    assert held_mail.tell_admins(mail_runtime, connection_id) == 0
    [mail] = (tmp_path / "mail").glob("*.eml")
    assert plan_id in mail.read_text()
    assert "800" in mail.read_text()

    # Another sync meanwhile leaves them held and changes nothing of theirs.
    tally, _ = apply_round(session_factory, connection_id, full(*listing))
    assert tally.counts["removed"] == 0

    with transaction(session_factory) as session:
        outcome = plans.approve(session, stored.get(session, acme.organisation.id, connection_id, plan_id))
        assert outcome.applied
        assert outcome.tally.counts["removed"] == 800
    now = states(session_factory, acme)
    assert (
        sum(1 for email, state in now.items() if email.endswith("@corp.example") and state is MemberStatus.REMOVED)
        == 800
    )
    with session_factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
        assert session.get_one(ApiToken, token_id).revoked_at is not None
        connection = session.get_one(Connection, connection_id)
        assert (connection.status, connection.held_plan_id) == (ConnectionStatus.ACTIVE, None)
        # An admin's approval is not counted against the next hour's limit.
        assert stored.removed_since(session, connection_id, utcnow() - timedelta(hours=1)) == 0

    # Undone: an admin restores the person with the booking at once (their API access comes back with a new
    # token, the old one stays revoked), then puts the scope back, and the next sync restores the other 799
    # instead of inviting them as strangers.
    with transaction(session_factory) as session:
        done = restores.restore(session, members.get_by_email(session, acme.organisation.id, "p0999@corp.example"))
        assert ([booking.id for booking in done.bookings], done.unrestored) == ([booking_id], [])
        [(new_token, _secret)] = done.tokens
        assert new_token.id != token_id
    set_settings(session_factory, connection_id, scope={})
    tally, _ = apply_round(session_factory, connection_id, full(*listing))
    assert (tally.counts.get("restored"), tally.counts.get("invited", 0), tally.counts.get("held", 0)) == (799, 0, 0)
    now = states(session_factory, acme)
    assert all(now[person.email] is MemberStatus.ACTIVE for person in people[1:])
    with session_factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.BOOKED
        assert session.get_one(ApiToken, token_id).revoked_at is not None
    restored_events = [
        event for event in events(session_factory, acme.organisation.id) if event.type == "membership.restored"
    ]
    assert len(restored_events) == 800


def test_rejected_removals_stay_and_are_not_proposed_again_until_the_directory_changes(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme, removal_limit={"people": 2, "percent": 0})
    group = DirectoryGroup("g-all", "All", members=frozenset({"a", "b", "c", "d"}))
    apply_round(session_factory, connection_id, full(user("a"), user("b"), user("c"), user("d"), groups=(group,)))
    tally, _ = apply_round(session_factory, connection_id, full(user("a"), groups=(group,)))
    assert tally.counts["held"] == 3
    with transaction(session_factory) as session:
        connection = session.get_one(Connection, connection_id)
        plan_id = connection.held_plan_id
        assert plan_id is not None
        plans.reject(session, stored.get(session, acme.organisation.id, connection_id, plan_id))
    with session_factory() as session:
        connection = session.get_one(Connection, connection_id)
        assert (connection.status, connection.held_plan_id) == (ConnectionStatus.ACTIVE, None)
        assert (
            session.get_one(SyncPlan, session.scalar(select(SyncPlan.id).where(SyncPlan.public_id == plan_id))).status
            is PlanStatus.REJECTED
        )
        assert len(session.scalars(select(TeamMembership)).all()) == 4  # they stay in the team too

    # A sync deciding everyone again (a new scope) keeps them, and says so.
    set_settings(session_factory, connection_id, team_groups=["g-all"])
    tally, _ = apply_round(session_factory, connection_id, full(user("a"), groups=(group,)))
    assert (tally.counts["removed"], tally.counts["held"], tally.counts["kept"]) == (0, 0, 3)
    assert all(state is MemberStatus.ACTIVE for state in states(session_factory, acme).values())
    with session_factory() as session:
        assert session.get_one(Connection, connection_id).held_plan_id is None

    # When the directory changes one of them (b comes back, then leaves again), b is proposed again.
    apply_round(session_factory, connection_id, full(user("a"), user("b"), groups=(group,)))
    tally, _ = apply_round(session_factory, connection_id, full(user("a"), groups=(group,)))
    assert tally.counts["removed"] == 1
    assert states(session_factory, acme)["b@acme.example"] is MemberStatus.REMOVED
    assert states(session_factory, acme)["c@acme.example"] is MemberStatus.ACTIVE


def test_removals_one_by_one_add_up_over_the_hour(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        connection, _ = connections.create(
            session, BOX, acme.organisation.id, ConnectionKind.SCIM, "Okta", settings={"removal_limit": {"people": 3}}
        )
        connection_id = connection.id
    with transaction(session_factory) as session:
        apply_now(session, connection_id, DirectoryPage(users=tuple(user(f"u{i}") for i in range(6))))
    with transaction(session_factory) as session:  # removals from over an hour ago do not count
        session.add(ConnectionRemoval(connection_id=connection_id, removed_at=utcnow() - timedelta(hours=2), people=50))

    outcomes = []
    for index in range(5):
        with transaction(session_factory) as session:
            tally = apply_now(session, connection_id, DirectoryPage(removed=(RemovedUser(f"u{index}"),)))
            outcomes.append((tally.counts["removed"], tally.counts["held"]))

    assert outcomes == [(1, 0), (1, 0), (1, 0), (0, 1), (0, 1)]
    with session_factory() as session:
        connection = session.get_one(Connection, connection_id)
        plan = stored.held_plan(session, connection)
        assert plan is not None
        assert shown(plan) == {"removed": ["u3@acme.example", "u4@acme.example"]}
        # The second held removal joined the first: a fresh held plan replaced the first one.
        assert len(session.scalars(select(SyncPlan).where(SyncPlan.status == PlanStatus.STALE)).all()) == 1
    held = [
        event for event in events(session_factory, acme.organisation.id) if event.type == "connection.removals_held"
    ]
    assert [event.data["removals"] for event in held] == [1, 2]


def test_approving_when_a_held_person_came_back_gives_a_fresh_held_plan(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    connection_id = connect(session_factory, acme, removal_limit={"people": 1, "percent": 0})
    apply_round(session_factory, connection_id, full(user("a"), user("b"), user("c")))
    apply_round(session_factory, connection_id, full(user("a")))
    with session_factory() as session:
        first = session.get_one(Connection, connection_id).held_plan_id
    assert first is not None
    # b is back in the directory: the held plan no longer stands as it was.
    apply_round(session_factory, connection_id, [DirectoryPage(users=(user("b"),), cursor="d", last=True)])

    with transaction(session_factory) as session:
        outcome = plans.approve(session, stored.get(session, acme.organisation.id, connection_id, first))
        assert not outcome.applied
        assert outcome.fresh is not None
        assert shown(outcome.fresh) == {"removed": ["c@acme.example"]}
        fresh = outcome.fresh.public_id
    assert states(session_factory, acme)["c@acme.example"] is MemberStatus.ACTIVE
    with transaction(session_factory) as session:
        assert plans.approve(session, stored.get(session, acme.organisation.id, connection_id, fresh)).applied
    assert states(session_factory, acme)["b@acme.example"] is MemberStatus.ACTIVE
    assert states(session_factory, acme)["c@acme.example"] is MemberStatus.REMOVED


def test_a_pushed_directory_plans_everyone_again(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        connection, _ = connections.create(session, BOX, acme.organisation.id, ConnectionKind.SCIM, "Okta")
        connection_id = connection.id
    with transaction(session_factory) as session:
        apply_now(session, connection_id, DirectoryPage(users=(user("a"), user("b", domain="else.example"))))
    set_settings(session_factory, connection_id, scope={"domains": ["acme.example"]})

    plan = make_plan(session_factory, connection_id, Source())
    assert shown(plan) == {"removed": ["b@else.example"]}
    with transaction(session_factory) as session:
        tally = redecide_everyone(session, connection_id)
    assert tally.people["removed"] == ["b@else.example"]


def test_engine_decisions_are_all_planned_first(session_factory: sessionmaker[Session], acme: Org) -> None:
    connection_id = connect(session_factory, acme)
    apply_round(session_factory, connection_id, full(user("a"), user("b")))
    with transaction(session_factory) as session:
        context = engine.Context.load(session, connection_id)
        people = engine.plan_people(session, context, ["a", "b"], set())
        assert [person.action for person in people] == ["", ""]
