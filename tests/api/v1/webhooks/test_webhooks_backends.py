"""The webhook routes' own queries on SQLite and PostgreSQL alike: the deliveries log, replays and samples."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.services import delivery_attempts, outbox_relay
from store.services.delivery_attempts import AttemptOutcome
from tests.api.v1.webhooks.conftest import create, make_desk
from tests.conftest import auth, make_client, make_org


def test_deliveries_replays_and_samples(session_factory: sessionmaker[Session]) -> None:
    client: TestClient = make_client(session_factory)
    org = make_org(session_factory)
    admin = auth(org.admin_token)
    endpoint = create(client, org, event_types=["desk.*"])
    for label in ("D1", "D2"):
        make_desk(client, org, label)
    with transaction(session_factory) as session:
        due = outbox_relay.relay(session, now=utcnow())
    with transaction(session_factory) as session:
        for delivery_id in due:
            failed = AttemptOutcome(status_code=500, duration_ms=12, response_excerpt="nope")
            delivery_attempts.record_attempt(session, delivery_id, failed, now=utcnow(), delays=())

    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params={"status": "exhausted"}, headers=admin).json()
    assert [entry["id"] for entry in log["data"]] == due[::-1]  # newest first
    assert [[attempt["status_code"] for attempt in entry["attempts"]] for entry in log["data"]] == [[500], [500]]
    event_id = log["data"][-1]["event_id"]
    per_event = client.get(f"/v1/events/{event_id}/deliveries", headers=admin).json()
    assert [entry["id"] for entry in per_event["data"]] == due[:1]

    replayed = client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/replay-failed",
        json={"since": "2000-01-01T00:00:00+00:00"},
        headers=admin,
    )
    assert replayed.json() == {"delivery_ids": due}
    pending = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params={"status": "pending"}, headers=admin)
    assert len(pending.json()["data"]) == 2
    # A replay starts a new round: the count of attempts made so far stays, and the next one is due.
    assert [(entry["attempt_count"], entry["next_attempt_at"] is not None) for entry in pending.json()["data"]] == [
        (1, True),
        (1, True),
    ]
    newest = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params={"limit": 1}, headers=admin).json()
    assert ([entry["id"] for entry in newest["data"]], newest["prev_cursor"]) == (due[1:], None)
    older = client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries", params={"limit": 1, "before": newest["next_cursor"]}, headers=admin
    ).json()
    assert ([entry["id"] for entry in older["data"]], older["next_cursor"], older["has_more"]) == (due[:1], None, False)
    newer = client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries", params={"limit": 1, "after": older["prev_cursor"]}, headers=admin
    ).json()
    assert ([entry["id"] for entry in newer["data"]], newer["prev_cursor"]) == (due[1:], None)

    latest = client.get("/v1/hooks/samples/desk.*", headers=admin).json()
    assert [event["data"]["label"] for event in latest] == ["D2", "D1"]
    assert client.get("/v1/hooks/samples/desk_thing.*", headers=admin).status_code == 404
