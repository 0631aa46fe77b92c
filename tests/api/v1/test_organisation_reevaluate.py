"""PATCH /v1/organisation hands the calendar settings it changed to the calendar worker, after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import Organisation
from tests.api.v1.conftest import assert_problem, nothing_written
from tests.conftest import Org, RecordedJobs, auth, make_client

Calls = list[tuple[int, list[str], dict[str, Any]]]
NO_RULES = {"categories": [], "keywords": [], "working_elsewhere_with_location": False}


@pytest.fixture
def calls() -> Calls:
    return []


class Watching(RecordedJobs):
    """The stub port, noting with each ask to bring calendars in line what the store held then."""

    def __init__(self, factory: sessionmaker[Session], calls: Calls) -> None:
        super().__init__()
        self.factory, self.calls = factory, calls

    def reevaluate_calendars(self, organisation_id: int, changed: Sequence[str]) -> None:
        super().reevaluate_calendars(organisation_id, changed)
        with self.factory() as session:  # a new session: sees only what was committed
            stored = session.get_one(Organisation, organisation_id)
            self.calls.append((organisation_id, list(changed), {name: getattr(stored, name) for name in changed}))


@pytest.fixture
def watched(api_factory: sessionmaker[Session], calls: Calls) -> TestClient:
    """The API whose calendar-settings hand-over notes what it was given and what the store held then."""
    return make_client(api_factory, jobs=Watching(api_factory, calls))


def patch(client: TestClient, org: Org, body: dict[str, Any]) -> None:
    response = client.patch("/v1/organisation", json=body, headers=auth(org.admin_token))
    assert response.status_code == 200, response.text


def test_changed_calendar_settings_are_handed_over_once_committed(watched: TestClient, org: Org, calls: Calls) -> None:
    rules = {"keywords": ["WFO"], "categories": [], "working_elsewhere_with_location": False}
    patch(watched, org, {"office_rules": rules, "calendar_window_days": 90, "timezone": "Europe/Paris"})
    committed = {"office_rules": rules, "calendar_window_days": 90}
    assert calls == [(org.organisation.id, ["office_rules", "calendar_window_days"], committed)]

    patch(watched, org, {"calendar_busy_only": True})
    assert calls[-1] == (org.organisation.id, ["calendar_busy_only"], {"calendar_busy_only": True})


def test_nothing_is_handed_over_when_no_calendar_setting_changed(
    watched: TestClient, api_factory: sessionmaker[Session], org: Org, calls: Calls
) -> None:
    patch(watched, org, {"timezone": "Europe/Paris", "directory_policy": "auto_accept"})
    patch(watched, org, {"calendar_window_days": 60, "calendar_busy_only": False})  # as they are
    patch(watched, org, {"office_rules": {}})  # all rules off, spelt out: read alike, judged alike
    patch(watched, org, {"office_rules": {"keywords": ["WFO"]}})
    patch(watched, org, {"office_rules": {"keywords": ["wfo "]}})  # case and spaces do not matter
    assert calls == [(org.organisation.id, ["office_rules"], {"office_rules": {**NO_RULES, "keywords": ["WFO"]}})]
    calls.clear()
    assert calls == []

    with nothing_written(api_factory):
        bad = watched.patch("/v1/organisation", json={"calendar_window_days": 0}, headers=auth(org.admin_token))
        assert_problem(bad, 422)
        member = watched.patch("/v1/organisation", json={"office_rules": {}}, headers=auth(org.member_token))
        assert_problem(member, 403, "admin_only")
    assert calls == []
