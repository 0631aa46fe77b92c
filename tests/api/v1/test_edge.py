"""The API's edge (issue 12, findings 4, 5, 6 and 9; issue 13's per-route body limits), on both stores.

Ids beyond the key columns' range, JSON nested too deep, NUL and lone surrogates, bodies too large
and unexpected exceptions are each answered in the route family's own shape (problem+json on /v1
and pushes, a SCIM error on /scim/v2, `{"detail": …}` on /api/), never as a 500 from the database.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from api.app import create_app
from api.json_checks import MAX_DEPTH
from store.db import make_session_factory, transaction
from store.models import ConnectionKind, Organisation
from store.secret_box import SecretBox
from store.services import connections
from tests.api.v1.conftest import assert_problem, nothing_written
from tests.conftest import Org, api_context, auth, make_client, make_org

BOX = SecretBox([SecretBox.generate_key()])
BEYOND = 2**31  # one past PostgreSQL's int4, the range of the key columns
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def org(factory: sessionmaker[Session]) -> Org:
    return make_org(factory)


@pytest.fixture
def client(factory: sessionmaker[Session]) -> Iterator[TestClient]:
    with make_client(factory, secret_box=BOX) as client:
        yield client


@pytest.fixture
def scim_token(factory: sessionmaker[Session], org: Org) -> str:
    with transaction(factory) as session:
        _, token = connections.create(session, BOX, org.organisation.id, ConnectionKind.SCIM, "Okta")
    assert token is not None
    return token


def assert_scim_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/scim+json"
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [SCIM_ERROR]
    assert body["status"] == str(status)
    return body


def nested(depth: int) -> bytes:
    return b'{"label": ' + b"[" * depth + b"]" * depth + b"}"


# Finding 4: ids above 2**31-1, zero and negative.


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/desks/{BEYOND}",
        f"/v1/members/{BEYOND}",
        f"/v1/webhooks/{BEYOND}/deliveries",
        f"/v1/bookings?member_id={BEYOND}",
        f"/v1/bookings?desk_id={BEYOND}",
        f"/v1/tokens?member_id={BEYOND}",
        f"/v1/external-events?member_id={BEYOND}",
        "/v1/desks/0",
        "/v1/desks/-1",
        f"/v1/events?after={2**63}",
        "/v1/events?after=-1",
    ],
)
def test_ids_beyond_the_key_range_are_422(client: TestClient, org: Org, path: str) -> None:
    body = assert_problem(client.get(path, headers=auth(org.admin_token)), 422, "invalid_input")
    assert body["errors"]


def test_ids_beyond_the_key_range_in_bodies_and_cursors_are_422(client: TestClient, org: Org) -> None:
    response = client.post("/v1/bookings", json={"desk_id": BEYOND}, headers=auth(org.admin_token))
    assert_problem(response, 422, "invalid_input")
    response = client.post("/v1/teams", json={"name": "Ops", "member_ids": [BEYOND]}, headers=auth(org.admin_token))
    assert response.status_code in (404, 422), response.text
    cursor = base64.urlsafe_b64encode(json.dumps({"k": "desks", "v": [BEYOND]}).encode()).decode().rstrip("=")
    assert_problem(client.get("/v1/desks", params={"cursor": cursor}, headers=auth(org.admin_token)), 422)


def test_event_cursors_beyond_int4_are_read(client: TestClient, factory: sessionmaker[Session], org: Org) -> None:
    # Event sequence numbers are 64-bit: an organisation past 2**31 events pages on as before.
    with transaction(factory) as session:
        session.execute(
            update(Organisation).where(Organisation.id == org.organisation.id).values(last_event_seq=BEYOND)
        )
    response = client.post("/v1/desks", json={"label": "A-1"}, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    response = client.get(f"/v1/events?after={BEYOND}", headers=auth(org.admin_token))
    assert response.status_code == 200, response.text
    page = response.json()
    assert [(event["seq"], event["type"]) for event in page["data"]] == [(BEYOND + 1, "desk.created")]
    assert page["next_cursor"] == str(BEYOND + 1)


def test_ids_beyond_the_key_range_on_unauthenticated_and_compat_routes(client: TestClient, org: Org) -> None:
    response = client.post(f"/hooks/resourceguru/{BEYOND}", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    response = client.post(f"/push/microsoft/{BEYOND}", json={"value": []})
    assert_problem(response, 422, "invalid_input")
    response = client.post(f"/push/google/{BEYOND}", json={})
    assert_problem(response, 422, "invalid_input")
    response = client.get(f"/api/create_membership_invitation/{BEYOND}/", headers=auth(org.admin_token))
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"member_id"}


# Finding 5: deep JSON, refused before parsing and before authentication.


@pytest.mark.parametrize("path", ["/v1/desks", "/push/microsoft/1", "/push/google/1", "/hooks/resourceguru/1"])
def test_deep_json_is_400_without_a_token(
    client: TestClient, factory: sessionmaker[Session], org: Org, path: str
) -> None:
    with nothing_written(factory):
        response = client.post(path, content=nested(20_000), headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "json_too_deep")


def test_deep_json_on_scim_is_a_scim_error(client: TestClient, org: Org, scim_token: str) -> None:
    headers = {"Content-Type": "application/scim+json"}
    body = assert_scim_error(client.post("/scim/v2/Users", content=nested(20_000), headers=headers), 400)
    assert body["scimType"] == "invalidSyntax"
    headers["Authorization"] = f"Bearer {scim_token}"
    assert_scim_error(client.post("/scim/v2/Groups", content=nested(MAX_DEPTH + 1), headers=headers), 400)


def test_deep_json_on_compat_is_detail(client: TestClient, org: Org) -> None:
    response = client.post(
        "/api/create_membership_invitation/", content=nested(5000), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"detail"}


def test_json_as_deep_as_allowed_reaches_the_route(client: TestClient, org: Org) -> None:
    # Brackets inside strings do not count; the route's own validation answers.
    content = b'{"label": "' + b"[" * 500 + b'", "x": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    response = client.post(
        "/v1/desks", content=content, headers={**auth(org.admin_token), "Content-Type": "application/json"}
    )
    assert_problem(response, 422, "invalid_input")


# Finding 6: NUL and lone surrogates.

NUL = "\x00"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/desks", {"label": f"A{NUL}1"}, "label"),
        ("POST", "/v1/teams", {"name": f"Ops{NUL}"}, "name"),
        (
            "POST",
            "/v1/bookings",
            {"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T17:00:00Z", "details": NUL},
            "details",
        ),
        ("POST", "/v1/webhooks", {"url": "https://example.com/h", "description": f"x{NUL}"}, "description"),
        ("POST", "/v1/connections", {"kind": "csv", "name": f"HR{NUL}"}, "name"),
        ("POST", "/v1/desks", {"label": "A\ud800"}, "label"),
        ("PATCH", "/v1/organisation", {"office_rules": {"keywords": [f"o{NUL}"]}}, "office_rules.keywords[0]"),
    ],
)
def test_nul_and_lone_surrogates_are_422_naming_the_field(
    client: TestClient,
    factory: sessionmaker[Session],
    org: Org,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    content = json.dumps(body).encode()  # ensure_ascii: "\u0000" and "\ud800" as escapes, as clients send them
    with nothing_written(factory):
        response = client.request(
            method, path, content=content, headers={**auth(org.admin_token), "Content-Type": "application/json"}
        )
    problem = assert_problem(response, 422, "invalid_input")
    assert problem["errors"][0]["field"] == field
    assert "NUL" in problem["errors"][0]["detail"] or "surrogate" in problem["errors"][0]["detail"]


def test_nul_in_the_query_is_422_naming_the_parameter(client: TestClient, org: Org) -> None:
    response = client.get("/v1/members", params={"email": f"a{NUL}@b.example"}, headers=auth(org.admin_token))
    problem = assert_problem(response, 422, "invalid_input")
    assert problem["errors"][0]["field"] == "email"


def test_nul_and_surrogates_on_scim_are_scim_errors(client: TestClient, org: Org, scim_token: str) -> None:
    headers = {"Authorization": f"Bearer {scim_token}", "Content-Type": "application/scim+json"}
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"a{NUL}@acme.example"}
    body = assert_scim_error(client.post("/scim/v2/Users", content=json.dumps(user), headers=headers), 400)
    assert body["scimType"] == "invalidValue"
    assert "userName" in body["detail"]
    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops\udc00"}
    body = assert_scim_error(client.post("/scim/v2/Groups", content=json.dumps(group), headers=headers), 400)
    assert "displayName" in body["detail"]
    assert_scim_error(client.get("/scim/v2/Users/x%00", headers=headers), 404)


def test_a_scim_start_index_beyond_any_listing_is_an_empty_page(client: TestClient, scim_token: str) -> None:
    headers = {"Authorization": f"Bearer {scim_token}"}
    for resource in ("Users", "Groups"):
        response = client.get(f"/scim/v2/{resource}", params={"startIndex": "9" * 20}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["Resources"] == []


def test_nul_in_compat_team_name_and_huge_page_numbers(client: TestClient, org: Org) -> None:
    params = {"team_name": f"Ops{NUL}"}
    response = client.get("/api/teams_upcoming_bookings/", params=params, headers=auth(org.admin_token))
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"team_name"}
    # httpie sends `team_name=…` on a GET as a JSON body: checked like any other body.
    response = client.request(
        "GET", "/api/teams_upcoming_bookings/", content=json.dumps(params), headers=auth(org.admin_token)
    )
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"team_name"}
    deep = nested(5000)
    response = client.request("GET", "/api/teams_upcoming_bookings/", content=deep, headers=auth(org.admin_token))
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"detail"}
    for page in ("99999999999999999999", "21474837", "²", "0", "-1"):
        response = client.get("/api/bookings/", params={"page": page}, headers=auth(org.admin_token))
        assert response.status_code == 404, (page, response.text)
        assert response.json() == {"detail": "Invalid page."}


# Per-route body limits (issue 13, item 1).


def test_scim_and_imports_take_large_bodies_and_the_rest_a_small_one(
    client: TestClient, org: Org, scim_token: str
) -> None:
    big = 200 * 1024  # a 2,000-person CSV, a 1,000-member group: well past the small limit
    headers = {"Authorization": f"Bearer {scim_token}", "Content-Type": "application/scim+json"}
    members = [{"value": str(n)} for n in range(big // 16)]
    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All", "members": members}
    response = client.post("/scim/v2/Groups", json=group, headers=headers)
    assert response.status_code != 413, response.text
    response = client.post("/v1/connections", json={"kind": "csv", "name": "HR"}, headers=auth(org.admin_token))
    connection_id = response.json()["id"]
    rows = "".join(f"p{n}@acme.example,Person {n}\n" for n in range(big // 30))
    response = client.post(
        f"/v1/connections/{connection_id}/import",
        params={"dry_run": "true"},
        json={"csv": "email,name\n" + rows},
        headers=auth(org.admin_token),
    )
    assert response.status_code == 200, response.text[:500]
    response = client.post("/v1/desks", json={"label": "x" * big}, headers=auth(org.admin_token))
    assert_problem(response, 413, "body_too_large")


def test_a_413_is_in_the_route_familys_shape(factory: sessionmaker[Session], org: Org, scim_token: str) -> None:
    app = create_app(
        api_context(factory, max_body_bytes=1024, max_import_bytes=4096, secret_box=BOX, allow_private_webhooks=False)
    )
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {scim_token}", "Content-Type": "application/scim+json"}
    body = assert_scim_error(client.post("/scim/v2/Users", content=b"{" + b" " * 5000 + b"}", headers=headers), 413)
    assert "4096" in body["detail"]
    response = client.post(
        "/api/create_membership_invitation/", content=b" " * 2000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert set(response.json()) == {"detail"}
    assert_problem(
        client.post("/v1/connections/1/import", content=b" " * 5000, headers={"Content-Type": "application/json"}), 413
    )


# Finding 9: an unexpected exception is a 500 in the family's shape, with an id found in the log.


class Boom(Exception):
    pass


def test_an_unhandled_error_is_a_500_problem_with_an_id_in_the_log(
    factory: sessionmaker[Session], org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_client(factory).app

    def boom() -> None:
        raise Boom("secret internals")

    app.add_api_route("/v1/boom", boom)  # type: ignore[attr-defined]
    app.add_api_route("/api/boom/", boom)  # type: ignore[attr-defined]
    app.add_api_route("/scim/v2/Boom", boom)  # type: ignore[attr-defined]
    app.router.routes.insert(0, app.router.routes.pop())  # type: ignore[attr-defined]  # before SCIM's catch-all
    client = TestClient(app)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="api.middleware"):
        problem = assert_problem(client.get("/v1/boom"), 500, "internal_error")
    error_id = problem["error_id"]
    assert error_id in problem["detail"]
    answer = client.get("/v1/boom").text
    assert "Traceback" not in answer
    assert "secret internals" not in answer
    record = next(r for r in caplog.records if error_id in r.getMessage())
    assert record.exc_info is not None  # the traceback, in the log only
    assert record.exc_info[0] is Boom
    response = client.get("/api/boom/")
    assert response.status_code == 500
    assert set(response.json()) == {"detail"}
    assert_scim_error(client.get("/scim/v2/Boom"), 500)


def test_a_row_deleted_meanwhile_is_a_404_in_the_familys_shape(factory: sessionmaker[Session], org: Org) -> None:
    # What a change meets when a concurrent request deleted its row (see test_races for the real race).
    app = make_client(factory).app

    def gone() -> None:
        raise StaleDataError("UPDATE statement on table 'desks' expected to update 1 row(s); 0 were matched.")

    for path in ("/v1/gone", "/api/gone/", "/scim/v2/Gone"):
        app.add_api_route(path, gone)  # type: ignore[attr-defined]
        app.router.routes.insert(0, app.router.routes.pop())  # type: ignore[attr-defined]
    client = TestClient(app)  # type: ignore[arg-type]
    assert_problem(client.get("/v1/gone"), 404, "not_found")
    assert client.get("/api/gone/").json() == {"detail": "It was deleted by a concurrent request."}
    assert_scim_error(client.get("/scim/v2/Gone"), 404)
