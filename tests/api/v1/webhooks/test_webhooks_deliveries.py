"""The deliveries log after real attempts, replays, resuming a paused endpoint and re-enabling a disabled one:
the API queues the backlog, real Dramatiq workers send it to a real receiver."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.models import Delivery
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.api.v1.webhooks.conftest import Pipeline, create, make_desk
from tests.conftest import Org, auth
from tests.worker.webhooks.conftest import Receiver, Reply, StartReceiver
from worker import runtime
from worker.webhooks import delivery

SINCE_LONG_AGO = "2000-01-01T00:00:00+00:00"


def received(receiver: Receiver) -> list[tuple[str, str]]:
    """(webhook-id, desk label) of every desk.created the receiver got, in arrival order."""
    events = [json.loads(request.body) for request in receiver.received]
    return [(event["id"], event["data"]["label"]) for event in events if event["type"] == "desk.created"]


def deliveries(api: TestClient, org: Org, endpoint_id: int, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/v1/webhooks/{endpoint_id}/deliveries", params=params, headers=auth(org.admin_token))
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_deliveries_log_after_real_attempts(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver(replies=[Reply(500, b"oops"), Reply(200, b"fine")])
    endpoint = create(api, org, receiver.url, event_types=["desk.created"])
    make_desk(api, org, "D1")
    pipeline.deliver()

    [entry] = deliveries(api, org, endpoint["id"])
    assert set(entry) == {
        "id",
        "endpoint_id",
        "event_id",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "delivered_at",
        "created_at",
        "attempts",
    }
    assert (entry["endpoint_id"], entry["event_type"], entry["status"]) == (endpoint["id"], "desk.created", "succeeded")
    assert entry["attempt_count"] == 2
    assert entry["delivered_at"] is not None
    assert entry["next_attempt_at"] is None
    first, second = entry["attempts"]
    assert set(first) == {"attempted_at", "status_code", "duration_ms", "response_excerpt", "error", "succeeded"}
    assert (first["status_code"], first["response_excerpt"], first["succeeded"]) == (500, "oops", False)
    assert (second["status_code"], second["response_excerpt"], second["succeeded"]) == (200, "fine", True)
    assert first["attempted_at"] <= second["attempted_at"]
    # Both attempts carried the event's id as webhook-id.
    assert [request.headers["webhook-id"] for request in receiver.received] == [entry["event_id"]] * 2


def test_deliveries_log_filters_and_pages(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    good = start_receiver()
    endpoint = create(api, org, good.url, event_types=["desk.created"])
    for label in ("D1", "D2", "D3"):
        make_desk(api, org, label)
    pipeline.deliver()
    everything = deliveries(api, org, endpoint["id"])
    assert [entry["status"] for entry in everything] == ["succeeded"] * 3
    # Requests of one job overlap (up to its slots), so they may arrive in any order: the log has each once.
    assert sorted(entry["event_id"] for entry in everything) == sorted(event_id for event_id, _ in received(good))

    assert deliveries(api, org, endpoint["id"], status="succeeded") == everything
    assert deliveries(api, org, endpoint["id"], status="exhausted") == []
    assert deliveries(api, org, endpoint["id"], event_id=everything[1]["event_id"]) == [everything[1]]
    assert [entry["id"] for entry in everything] == sorted((entry["id"] for entry in everything), reverse=True)
    newest, middle, oldest = everything

    def page(**params: Any) -> dict[str, Any]:
        response = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params=params, headers=auth(org.admin_token))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # Back in time with `before` (next_cursor), forward with `after` (prev_cursor), newest first both ways.
    first = page(limit=2)
    assert (first["data"], first["has_more"], first["prev_cursor"]) == ([newest, middle], True, None)
    back = page(limit=2, before=first["next_cursor"])
    assert (back["data"], back["has_more"], back["next_cursor"]) == ([oldest], False, None)
    forward = page(limit=1, after=back["prev_cursor"])
    assert (forward["data"], forward["has_more"]) == ([middle], True)
    assert forward["next_cursor"] == str(middle["id"])
    last = page(limit=1, after=forward["prev_cursor"])
    assert (last["data"], last["has_more"], last["prev_cursor"]) == ([newest], False, None)
    assert page(after=newest["id"]) == {"data": [], "next_cursor": None, "prev_cursor": None, "has_more": False}
    assert page(status="succeeded", before=newest["id"])["data"] == [middle, oldest]
    both = api.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries", params={"after": 1, "before": 9}, headers=auth(org.admin_token)
    )
    assert error_fields(assert_problem(both, 422)) == {"after"}

    bad = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params={"status": "lost"}, headers=auth(org.admin_token))
    assert error_fields(assert_problem(bad, 422)) == {"status"}
    assert_problem(api.get("/v1/webhooks/987654/deliveries", headers=auth(org.admin_token)), 404)


def test_the_log_shows_when_a_failed_delivery_is_retried_not_its_lease(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver, api_factory: sessionmaker[Session]
) -> None:
    receiver = start_receiver(replies=[Reply(503), Reply(200)])
    endpoint = create(api, org, receiver.url, event_types=["desk.created"])
    make_desk(api, org, "D1")
    queued: list[list[int]] = []
    slow_retries = dataclasses.replace(runtime.current(), retry_delays=(5.0, 5.0))
    delivery.relay(slow_retries, lambda ids, _delay: queued.append(ids))
    started = utcnow()
    delivery.attempt_batch(slow_retries, queued.pop(0), lambda ids, _delay: queued.append(ids))
    ended = utcnow()
    assert len(queued) == 1  # the retry is queued (5 s away), and leased meanwhile

    [entry] = deliveries(api, org, endpoint["id"])
    assert (entry["status"], entry["attempt_count"]) == ("pending", 1)
    shown = datetime.fromisoformat(entry["next_attempt_at"])
    assert started + timedelta(seconds=4) <= shown <= ended + timedelta(seconds=6)  # 5 s, jittered by 20 %
    with api_factory() as session:
        leased_until = session.get_one(Delivery, entry["id"]).next_attempt_at
    assert leased_until is not None
    assert leased_until >= shown + delivery.LEASE  # what the sweep reads, not what the log shows

    delivery.attempt_batch(slow_retries, queued.pop(0), lambda ids, _delay: queued.append(ids))
    [done] = deliveries(api, org, endpoint["id"])
    assert (done["status"], done["attempt_count"], done["next_attempt_at"]) == ("succeeded", 2, None)


def test_deliveries_of_one_event_across_endpoints(
    api: TestClient, pipeline: Pipeline, org: Org, other_org: Org, start_receiver: StartReceiver
) -> None:
    ok, failing = start_receiver(), start_receiver(replies=[Reply(500)])
    to_ok = create(api, org, ok.url, event_types=["desk.*"])
    to_failing = create(api, org, failing.url, event_types=["desk.created"])
    create(api, org, ok.url, event_types=["booking.*"])  # not subscribed: no delivery
    make_desk(api, org, "D1")
    pipeline.deliver()
    [(event_id, _)] = received(ok)

    response = api.get(f"/v1/events/{event_id}/deliveries", headers=auth(org.admin_token))
    assert response.status_code == 200
    page = response.json()
    assert [(d["endpoint_id"], d["status"]) for d in page["data"]] == [
        (to_ok["id"], "succeeded"),
        (to_failing["id"], "exhausted"),
    ]
    assert [len(d["attempts"]) for d in page["data"]] == [1, 2]
    assert page["has_more"] is False

    assert_problem(api.get(f"/v1/events/{event_id}/deliveries", headers=auth(other_org.admin_token)), 404)
    assert_problem(api.get("/v1/events/evt_unknown/deliveries", headers=auth(org.admin_token)), 404)
    assert_problem(api.get(f"/v1/events/{event_id}/deliveries", headers=auth(org.member_token)), 403, "admin_only")


def test_replay_one_event(api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver) -> None:
    receiver = start_receiver()
    endpoint = create(api, org, receiver.url, event_types=["desk.created"])
    make_desk(api, org, "D1")
    pipeline.deliver()
    [(event_id, _)] = received(receiver)
    [before] = deliveries(api, org, endpoint["id"])

    response = api.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/replay", json={"event_id": event_id}, headers=auth(org.admin_token)
    )
    assert response.status_code == 202
    assert response.json() == {"delivery_ids": [before["id"]]}
    pipeline.drain()

    assert [webhook_id for webhook_id, _ in received(receiver)] == [event_id, event_id]
    [after] = deliveries(api, org, endpoint["id"])
    # The count is of every attempt, the replay's included.
    assert (after["status"], after["attempt_count"], len(after["attempts"])) == ("succeeded", 2, 2)


def test_replay_an_event_older_than_the_endpoint(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    make_desk(api, org, "Before")
    pipeline.deliver()
    receiver = start_receiver()
    endpoint = create(api, org, receiver.url, event_types=["desk.*"])
    events = api.get("/v1/events", params={"limit": 200}, headers=auth(org.admin_token)).json()["data"]
    [event_id] = [event["id"] for event in events if event["type"] == "desk.created"]

    response = api.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/replay", json={"event_id": event_id}, headers=auth(org.admin_token)
    )
    assert response.status_code == 202
    pipeline.drain()
    assert received(receiver) == [(event_id, "Before")]


def test_replay_refusals(
    api: TestClient, api_factory: sessionmaker[Session], pipeline: Pipeline, org: Org, other_org: Org
) -> None:
    endpoint = create(api, org, event_types=["booking.*"])
    make_desk(api, org, "D1")
    make_desk(api, other_org, "Theirs")
    events = api.get("/v1/events", params={"limit": 200}, headers=auth(org.admin_token)).json()["data"]
    [desk_event] = [event["id"] for event in events if event["type"] == "desk.created"]
    theirs = api.get("/v1/events", params={"limit": 200}, headers=auth(other_org.admin_token)).json()["data"][-1]
    path = f"/v1/webhooks/{endpoint['id']}/deliveries"
    admin = auth(org.admin_token)
    with nothing_written(api_factory):
        not_subscribed = api.post(f"{path}/replay", json={"event_id": desk_event}, headers=admin)
        unknown = api.post(f"{path}/replay", json={"event_id": "evt_nope"}, headers=admin)
        other = api.post(f"{path}/replay", json={"event_id": theirs["id"]}, headers=admin)
        missing = api.post(f"{path}/replay", json={}, headers=admin)
        naive = api.post(f"{path}/replay-failed", json={"since": "2030-01-01T00:00:00"}, headers=admin)
        number = api.post(f"{path}/replay-failed", json={"since": 1893456000}, headers=admin)
    assert_problem(not_subscribed, 409, "not_allowed")
    assert_problem(unknown, 404, "not_found")
    assert_problem(other, 404, "not_found")
    assert error_fields(assert_problem(missing, 422)) == {"event_id"}
    assert error_fields(assert_problem(naive, 422)) == {"since"}
    assert error_fields(assert_problem(number, 422)) == {"since"}


def test_replay_failed_deliveries_in_order(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver(replies=[Reply(500)])
    endpoint = create(api, org, receiver.url, event_types=["desk.created"])
    for label in ("D1", "D2", "D3"):
        make_desk(api, org, label)
    pipeline.deliver()
    failed = deliveries(api, org, endpoint["id"], status="exhausted")
    assert len(failed) == 3
    path = f"/v1/webhooks/{endpoint['id']}/deliveries/replay-failed"

    future = api.post(path, json={"since": "2100-01-01T00:00:00+00:00"}, headers=auth(org.admin_token))
    assert (future.status_code, future.json()) == (202, {"delivery_ids": []})

    receiver.received.clear()
    receiver.replies = [Reply(200)]
    response = api.post(path, json={"since": SINCE_LONG_AGO}, headers=auth(org.admin_token))
    assert response.status_code == 202
    assert response.json() == {"delivery_ids": [entry["id"] for entry in failed][::-1]}  # the log: newest first
    pipeline.drain()
    assert [label for _, label in received(receiver)] == ["D1", "D2", "D3"]
    assert deliveries(api, org, endpoint["id"], status="succeeded") != []
    assert deliveries(api, org, endpoint["id"], status="exhausted") == []


def test_paused_endpoint_gets_its_events_in_order_when_resumed(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    endpoint = create(api, org, receiver.url, event_types=["desk.created"], paused=True)
    for label in ("D1", "D2", "D3", "D4"):
        make_desk(api, org, label)
    pipeline.deliver()
    assert receiver.received == []
    assert [entry["status"] for entry in deliveries(api, org, endpoint["id"])] == ["pending"] * 4

    response = api.patch(f"/v1/webhooks/{endpoint['id']}", json={"paused": False}, headers=auth(org.admin_token))
    assert (response.status_code, response.json()["paused"]) == (200, False)
    pipeline.drain()
    assert [label for _, label in received(receiver)] == ["D1", "D2", "D3", "D4"]
    assert [entry["status"] for entry in deliveries(api, org, endpoint["id"])] == ["succeeded"] * 4


def test_disabled_endpoint_is_shown_and_enabled_again(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver(replies=[Reply(410, b"gone")])
    endpoint = create(api, org, receiver.url, event_types=["desk.created"])
    path = f"/v1/webhooks/{endpoint['id']}"
    make_desk(api, org, "D1")
    make_desk(api, org, "D2")
    pipeline.deliver()

    shown = api.get(path, headers=auth(org.admin_token)).json()
    assert shown["disabled_reason"] == "gone"
    assert shown["disabled_at"] is not None
    assert shown["failing_since"] is not None
    statuses = [entry["status"] for entry in deliveries(api, org, endpoint["id"])]
    assert statuses == ["pending", "exhausted"]  # the second one (newest first) waits, unsent, while disabled
    replay = api.post(f"{path}/deliveries/replay-failed", json={"since": SINCE_LONG_AGO}, headers=auth(org.admin_token))
    assert_problem(replay, 409, "not_allowed")

    receiver.replies = [Reply(200)]
    receiver.received.clear()
    enabled = api.post(f"{path}/enable", headers=auth(org.admin_token))
    assert enabled.status_code == 200
    assert (enabled.json()["disabled_at"], enabled.json()["disabled_reason"]) == (None, None)
    pipeline.drain()
    assert [label for _, label in received(receiver)] == ["D2"]

    again = api.post(f"{path}/enable", headers=auth(org.admin_token))  # already enabled: nothing to do
    assert (again.status_code, again.json()["disabled_at"]) == (200, None)
    pipeline.drain()
    assert [label for _, label in received(receiver)] == ["D2"]


def test_deleting_an_endpoint_deletes_its_log(api: TestClient, pipeline: Pipeline, org: Org) -> None:
    endpoint = create(api, org, event_types=["desk.created"], paused=True)
    make_desk(api, org, "D1")
    pipeline.deliver()
    [entry] = deliveries(api, org, endpoint["id"])
    assert api.delete(f"/v1/webhooks/{endpoint['id']}", headers=auth(org.admin_token)).status_code == 204
    response = api.get(f"/v1/events/{entry['event_id']}/deliveries", headers=auth(org.admin_token))
    assert response.json()["data"] == []
