"""Webhook endpoints: creation and its checks, updates, deletion, event patterns and signing secrets."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.errors import Invalid, NotFound
from store.models import EndpointKind, PayloadFormat, WebhookEndpoint
from store.secret_box import SecretBox
from store.services import webhook_endpoints, webhook_secrets
from store.times import iso
from tests.conftest import Org, make_org
from tests.conftest import events as all_events
from tests.store.conftest import Outbox, dump, refused

URL = "https://receiver.example/hooks"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([SecretBox.generate_key()])


def create(factory: sessionmaker[Session], org: Org, box: SecretBox, **options: Any) -> tuple[int, str]:
    with transaction(factory) as session:
        endpoint, secret = webhook_endpoints.create_endpoint(
            session, org.organisation.id, options.pop("url", URL), box=box, **options
        )
        return endpoint.id, secret


def load(factory: sessionmaker[Session], endpoint_id: int) -> WebhookEndpoint:
    with factory() as session:
        return session.get_one(WebhookEndpoint, endpoint_id)


def test_generate_secret_is_whsec_and_32_random_bytes() -> None:
    secret = webhook_secrets.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert webhook_secrets.generate_secret() != secret


def test_create_returns_the_secret_once_and_keeps_it_encrypted(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox, box: SecretBox
) -> None:
    endpoint_id, secret = create(session_factory, acme, box, description=" CRM ", event_types=["booking.*"])
    stored = load(session_factory, endpoint_id)
    assert secret.startswith("whsec_")
    assert stored.secret_encrypted != secret
    assert secret not in stored.secret_encrypted
    assert webhook_secrets.reveal_secret(stored, box) == secret
    assert (stored.url, stored.description, stored.event_types) == (URL, "CRM", ["booking.*"])
    assert (stored.payload_format, stored.kind, stored.paused) == (PayloadFormat.EVENT, EndpointKind.WEBHOOK, False)
    assert (stored.disabled_at, stored.failing_since, stored.previous_secret_encrypted) == (None, None, None)
    assert outbox.only("endpoint.created") == {
        "endpoint_id": endpoint_id,
        "kind": "webhook",
        "url": URL,
        "description": "CRM",
        "event_types": ["booking.*"],
        "payload_format": "event",
        "paused": False,
        "disabled": False,
        "ordered": False,
        "rate_limit_per_second": None,
        "signature": "hmac",
    }


def test_create_a_paused_rest_hook_in_array_format(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    endpoint_id, _ = create(
        session_factory, acme, box, kind="rest_hook", payload_format="array", paused=True, url="http://zap.example/h"
    )
    stored = load(session_factory, endpoint_id)
    assert (stored.kind, stored.payload_format, stored.paused) == (EndpointKind.REST_HOOK, PayloadFormat.ARRAY, True)


def test_patterns_are_trimmed_and_deduplicated(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    endpoint_id, _ = create(session_factory, acme, box, event_types=[" booking.created", "booking.created", "*"])
    assert load(session_factory, endpoint_id).event_types == ["booking.created", "*"]


BAD_CREATES: list[tuple[str, dict[str, Any]]] = [
    ("url", {"url": "ftp://files.example/x"}),
    ("url", {"url": "receiver.example/hooks"}),
    ("url", {"url": "https://"}),
    ("url", {"url": "https:///path-only"}),
    ("url", {"url": "https://receiver.example:99999/"}),
    ("url", {"url": "https://receiver.example/a b"}),
    ("url", {"url": "https://receiver.example/\x01"}),
    ("url", {"url": "   "}),
    ("url", {"url": "https://receiver.example/" + "a" * 2000}),
    ("event_types", {"event_types": ["Booking.created"]}),
    ("event_types", {"event_types": ["booking."]}),
    ("event_types", {"event_types": ["*.created"]}),
    ("event_types", {"event_types": ["booking.*.x"]}),
    ("event_types", {"event_types": [""]}),
    ("event_types", {"event_types": ["booking created"]}),
    ("event_types", {"event_types": "booking.created"}),
    ("event_types", {"event_types": [f"type_{n}" for n in range(101)]}),
    ("payload_format", {"payload_format": "xml"}),
    ("kind", {"kind": "email"}),
    ("description", {"description": "x" * 1001}),
]


@pytest.mark.parametrize(
    ("field", "options"), BAD_CREATES, ids=[f"{field}-{n}" for n, (field, _) in enumerate(BAD_CREATES)]
)
def test_create_refuses_bad_input(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox, field: str, options: dict[str, Any]
) -> None:
    options = dict(options)  # the parameters are shared by both backends' runs
    with refused(session_factory, Invalid) as attempt:
        webhook_endpoints.create_endpoint(
            attempt.session, acme.organisation.id, options.pop("url", URL), box=box, **options
        )
    assert attempt.error.field == field


def test_credentials_in_the_url_never_reach_events(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox, box: SecretBox
) -> None:
    endpoint_id, _ = create(session_factory, acme, box, url="https://user:hunter2@receiver.example:8443/h?x=1")
    assert load(session_factory, endpoint_id).url == "https://user:hunter2@receiver.example:8443/h?x=1"
    with transaction(session_factory) as session:
        endpoint = webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id)
        webhook_endpoints.update_endpoint(session, endpoint, url="https://token@other.example/h")
    created, updated = outbox.new()
    assert created.data["url"] == "https://***@receiver.example:8443/h?x=1"
    assert updated.data["changes"]["url"] == updated.data["url"] == "https://***@other.example/h"
    assert "hunter2" not in str([created.data, updated.data])
    assert "token" not in str(updated.data)


def test_get_endpoint_only_in_its_organisation(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    globex = make_org(session_factory, "Globex")
    endpoint_id, _ = create(session_factory, acme, box)
    with transaction(session_factory) as session:
        assert webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id).id == endpoint_id
        with pytest.raises(NotFound):
            webhook_endpoints.get_endpoint(session, globex.organisation.id, endpoint_id)
        with pytest.raises(NotFound):
            webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id + 100)


def test_select_endpoints_by_organisation_and_kind(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    globex = make_org(session_factory, "Globex")
    hook_id, _ = create(session_factory, acme, box)
    rest_id, _ = create(session_factory, acme, box, kind="rest_hook")
    create(session_factory, globex, box)
    org_id = acme.organisation.id
    with session_factory() as session:

        def ids(kind: str | None = None) -> set[int]:
            return {endpoint.id for endpoint in session.scalars(webhook_endpoints.select_endpoints(org_id, kind=kind))}

        assert ids() == {hook_id, rest_id}
        assert ids("webhook") == {hook_id}
        assert ids("rest_hook") == {rest_id}
        with pytest.raises(Invalid) as raised:
            ids("email")
    assert raised.value.field == "kind"


def test_update_changes_fields_and_records_what_changed(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox, box: SecretBox
) -> None:
    endpoint_id, _ = create(session_factory, acme, box)
    outbox.skip()
    with transaction(session_factory) as session:
        endpoint = webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id)
        _, resumed = webhook_endpoints.update_endpoint(
            session,
            endpoint,
            url="http://new.example/h",
            description=" new ",
            event_types=["desk.*"],
            payload_format="array",
            paused=True,
        )
    assert resumed == []
    stored = load(session_factory, endpoint_id)
    assert (stored.url, stored.description, stored.event_types, stored.payload_format, stored.paused) == (
        "http://new.example/h",
        "new",
        ["desk.*"],
        PayloadFormat.ARRAY,
        True,
    )
    data = outbox.only("endpoint.updated")
    assert data["changes"] == {
        "url": "http://new.example/h",
        "description": "new",
        "event_types": ["desk.*"],
        "payload_format": "array",
        "paused": True,
    }
    assert (data["endpoint_id"], data["paused"]) == (endpoint_id, True)


def test_update_without_change_records_nothing(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox, box: SecretBox
) -> None:
    endpoint_id, _ = create(session_factory, acme, box, event_types=["desk.created"])
    outbox.skip()
    with transaction(session_factory) as session:
        endpoint = webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id)
        assert webhook_endpoints.update_endpoint(session, endpoint) == (endpoint, [])
        assert webhook_endpoints.update_endpoint(
            session, endpoint, url=f" {URL} ", event_types=["desk.created"], paused=False, payload_format="event"
        ) == (endpoint, [])
    assert outbox.new() == []


@pytest.mark.parametrize(
    ("field", "options"),
    [
        ("url", {"url": "mailto:someone@example.com"}),
        ("event_types", {"event_types": ["BOOKING"]}),
        ("payload_format", {"payload_format": "csv"}),
        ("description", {"description": "x" * 1001}),
    ],
)
def test_update_refuses_bad_input(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox, field: str, options: dict[str, Any]
) -> None:
    endpoint_id, _ = create(session_factory, acme, box)
    with refused(session_factory, Invalid) as attempt:
        endpoint = webhook_endpoints.get_endpoint(attempt.session, acme.organisation.id, endpoint_id)
        webhook_endpoints.update_endpoint(attempt.session, endpoint, **options)
    assert attempt.error.field == field


def test_delete_records_and_removes(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox, box: SecretBox
) -> None:
    endpoint_id, _ = create(session_factory, acme, box)
    outbox.skip()
    with transaction(session_factory) as session:
        webhook_endpoints.delete_endpoint(
            session, webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id)
        )
    assert outbox.only("endpoint.deleted")["endpoint_id"] == endpoint_id
    with session_factory() as session:
        assert session.get(WebhookEndpoint, endpoint_id) is None


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        ([], "booking.created", True),
        (["*"], "anything.at_all", True),
        (["booking.created"], "booking.created", True),
        (["booking.created"], "booking.cancelled", False),
        (["booking.*"], "booking.checked_in", True),
        (["booking.*"], "booking", False),
        (["booking.*"], "bookings.created", False),
        (["booking.*"], "desk.created", False),
        (["external_event.*"], "external_event.upserted", True),
        (["desk.created", "booking.*"], "booking.cancelled", True),
        (["desk.created", "booking.*"], "member.updated", False),
        (["booking"], "booking.created", False),
    ],
)
def test_matches(patterns: list[str], event_type: str, expected: bool) -> None:
    assert webhook_endpoints.matches(patterns, event_type) is expected


def test_rotation_keeps_the_old_secret_for_24_hours(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox, box: SecretBox
) -> None:
    endpoint_id, first = create(session_factory, acme, box)
    now = utcnow()
    outbox.skip()
    with transaction(session_factory) as session:
        endpoint = webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id)
        second = webhook_secrets.rotate_secret(session, endpoint, box, now)
    stored = load(session_factory, endpoint_id)
    assert second.startswith("whsec_")
    assert second != first
    assert webhook_secrets.reveal_secret(stored, box) == second
    assert webhook_secrets.signing_secrets(stored, box, now) == [second, first]
    assert webhook_secrets.signing_secrets(stored, box, now + timedelta(hours=24) - timedelta(seconds=1)) == [
        second,
        first,
    ]
    assert webhook_secrets.signing_secrets(stored, box, now + webhook_secrets.ROTATION_GRACE) == [second]
    assert webhook_secrets.signing_secrets(stored, box, now + timedelta(days=2)) == [second]
    data = outbox.only("endpoint.secret_rotated")
    assert data == {"endpoint_id": endpoint_id, "previous_valid_until": iso(now + timedelta(hours=24))}


def test_a_second_rotation_ends_the_first_grace_at_once(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    endpoint_id, first = create(session_factory, acme, box)
    now = utcnow()
    with transaction(session_factory) as session:
        endpoint = webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id)
        second = webhook_secrets.rotate_secret(session, endpoint, box, now)
        third = webhook_secrets.rotate_secret(session, endpoint, box, now + timedelta(hours=1))
    stored = load(session_factory, endpoint_id)
    assert webhook_secrets.signing_secrets(stored, box, now + timedelta(hours=2)) == [third, second]
    assert first not in webhook_secrets.signing_secrets(stored, box, now + timedelta(hours=2))


def test_a_new_endpoint_signs_with_one_secret(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    endpoint_id, secret = create(session_factory, acme, box)
    assert webhook_secrets.signing_secrets(load(session_factory, endpoint_id), box, utcnow()) == [secret]


def test_secrets_never_appear_in_clear_anywhere(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    endpoint_id, first = create(session_factory, acme, box)
    with transaction(session_factory) as session:
        endpoint = webhook_endpoints.get_endpoint(session, acme.organisation.id, endpoint_id)
        second = webhook_secrets.rotate_secret(session, endpoint, box, utcnow())
        webhook_endpoints.update_endpoint(session, endpoint, paused=True)
        webhook_endpoints.delete_endpoint(session, endpoint)
    everything = str(dump(session_factory))
    event_data = str([event.data for event in all_events(session_factory, acme.organisation.id)])
    for secret in (first, second, first.removeprefix("whsec_"), second.removeprefix("whsec_")):
        assert secret not in everything
        assert secret not in event_data
    types = [event.type for event in all_events(session_factory, acme.organisation.id)]
    assert types[-4:] == ["endpoint.created", "endpoint.secret_rotated", "endpoint.updated", "endpoint.deleted"]


def test_a_box_without_the_key_cannot_reveal(session_factory: sessionmaker[Session], acme: Org, box: SecretBox) -> None:
    from store.secret_box import UndecryptableSecret

    endpoint_id, _ = create(session_factory, acme, box)
    with pytest.raises(UndecryptableSecret):
        webhook_secrets.reveal_secret(load(session_factory, endpoint_id), SecretBox([SecretBox.generate_key()]))


def test_endpoints_go_with_their_organisation(
    session_factory: sessionmaker[Session], acme: Org, box: SecretBox
) -> None:
    from store.models import Organisation

    create(session_factory, acme, box)
    with transaction(session_factory) as session:
        session.delete(session.get_one(Organisation, acme.organisation.id))
    with session_factory() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []
