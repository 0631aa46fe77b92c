"""/scim/v2/Users: create, read, list, replace, patch (Entra ID and Okta quirks), delete, and what they do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Booking, BookingStatus, DirectoryUser, Member, MemberStatus, Organisation
from store.services import bookings, desks, members, organisations
from tests.api.scim.conftest import SCIM_JSON, Scim, user_body
from tests.conftest import events

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def assert_scim_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """The response is a SCIM error message with `status` (and `scimType`)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == SCIM_JSON
    body: dict[str, Any] = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    assert body["detail"]
    assert body.get("scimType") == scim_type
    return body


def member_status(factory: sessionmaker[Session], email: str) -> MemberStatus | None:
    with factory() as session:
        return session.scalar(select(Member.status).where(Member.email == email))


def documents(factory: sessionmaker[Session]) -> list[tuple[str, Any]]:
    with factory() as session:
        return [(row.external_id, row.document) for row in session.scalars(select(DirectoryUser))]


@pytest.fixture
def alice(scim: Scim) -> dict[str, Any]:
    response = scim.post("/Users", user_body("alice", externalId="okta-00u1"))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_invites_the_person_and_answers_the_resource(
    scim: Scim, api_factory: sessionmaker[Session], alice: dict[str, Any]
) -> None:
    assert len(alice["id"]) == 32
    assert alice["userName"] == "alice@acme.example"
    assert alice["externalId"] == "okta-00u1"
    assert alice["meta"]["resourceType"] == "User"
    assert alice["meta"]["location"] == f"http://testserver/scim/v2/Users/{alice['id']}"
    assert alice["meta"]["created"] == alice["meta"]["lastModified"]
    assert member_status(api_factory, "alice@acme.example") is MemberStatus.INVITED
    with api_factory() as session:
        name = session.scalar(select(Member.display_name).where(Member.email == "alice@acme.example"))
    assert name == "Alice Liddell"  # no displayName: given and family names


def test_create_answers_201_with_location_and_scim_json(scim: Scim) -> None:
    response = scim.post("/Users", user_body("bob"))

    assert response.status_code == 201
    assert response.headers["content-type"] == SCIM_JSON
    assert response.headers["location"] == response.json()["meta"]["location"]


def test_the_organisation_policy_can_add_members_at_once(scim: Scim, api_factory: sessionmaker[Session]) -> None:
    with transaction(api_factory) as session:
        organisations.update_settings(
            session, session.get_one(Organisation, scim.org.organisation.id), directory_policy="auto_accept"
        )

    scim.post("/Users", user_body("bob"))

    assert member_status(api_factory, "bob@acme.example") is MemberStatus.ACTIVE


def test_a_username_taken_in_any_case_is_a_uniqueness_conflict(
    scim: Scim, api_factory: sessionmaker[Session], alice: dict[str, Any]
) -> None:
    before = documents(api_factory)

    response = scim.post("/Users", user_body("bob", userName="ALICE@acme.example"))

    assert_scim_error(response, 409, "uniqueness")
    assert documents(api_factory) == before


def test_create_without_username_is_invalid_value(scim: Scim, api_factory: sessionmaker[Session]) -> None:
    assert_scim_error(scim.post("/Users", {"schemas": [], "displayName": "No One"}), 400, "invalidValue")
    assert_scim_error(scim.post("/Users", user_body(active="perhaps")), 400, "invalidValue")
    assert_scim_error(scim.post("/Users", {"userName": "x@acme.example", "name": "Alice"}), 400, "invalidValue")
    assert_scim_error(scim.post("/Users", ["not", "an", "object"]), 400, "invalidValue")
    assert_scim_error(scim.post("/Users", user_body(userName="a" * 321)), 400, "invalidValue")
    assert documents(api_factory) == []


def test_an_address_comes_from_the_work_email_or_the_username(scim: Scim, api_factory: sessionmaker[Session]) -> None:
    scim.post(
        "/Users",
        user_body(
            "carol",
            emails=[{"value": "carol@home.example", "type": "home"}, {"value": "c.l@acme.example", "type": "work"}],
        ),
    )
    scim.post("/Users", {"userName": "dave@acme.example", "displayName": "Dave"})  # Entra ID without emails

    assert member_status(api_factory, "c.l@acme.example") is MemberStatus.INVITED
    assert member_status(api_factory, "dave@acme.example") is MemberStatus.INVITED


def test_password_and_read_only_values_are_not_kept(scim: Scim, alice: dict[str, Any]) -> None:
    response = scim.post(
        "/Users", user_body("bob", password="hunter2", id="mine", groups=[{"value": "g"}], meta={"version": "x"})
    )

    body = response.json()
    assert "password" not in body
    assert "groups" not in body
    assert body["id"] != "mine"
    assert "version" not in body["meta"]


def test_get_by_id_and_an_unknown_id_is_404(scim: Scim, alice: dict[str, Any]) -> None:
    response = scim.get(f"/Users/{alice['id']}")
    assert response.status_code == 200
    assert response.json() == alice

    assert_scim_error(scim.get("/Users/0123456789abcdef"), 404)


def test_attributes_and_excluded_attributes_shape_reads(scim: Scim, alice: dict[str, Any]) -> None:
    only = scim.get(f"/Users/{alice['id']}", attributes="userName,name.givenName").json()
    assert only == {
        "schemas": alice["schemas"],
        "id": alice["id"],
        "userName": "alice@acme.example",
        "name": {"givenName": "Alice"},
    }
    without = scim.get("/Users", excludedAttributes="emails,name.familyName").json()["Resources"][0]
    assert "emails" not in without
    assert without["name"] == {"givenName": "Alice"}


def test_list_filters_by_username_ignoring_case_and_by_external_id(scim: Scim, alice: dict[str, Any]) -> None:
    scim.post("/Users", user_body("bob"))

    by_name = scim.get("/Users", filter='userName eq "Alice@ACME.example"').json()
    by_external = scim.get("/Users", filter='externalId eq "okta-00u1"').json()
    by_id = scim.get("/Users", filter=f'id eq "{alice["id"]}" and userName eq "alice@acme.example"').json()
    nobody = scim.get("/Users", filter='userName eq "zed@acme.example"').json()

    assert [item["id"] for item in by_name["Resources"]] == [alice["id"]]
    assert [item["id"] for item in by_external["Resources"]] == [alice["id"]]
    assert [item["id"] for item in by_id["Resources"]] == [alice["id"]]
    assert nobody["totalResults"] == 0
    assert nobody["Resources"] == []


def test_list_pages_with_start_index_and_count(scim: Scim) -> None:
    ids = [scim.post("/Users", user_body(f"user{n}")).json()["id"] for n in range(5)]

    page = scim.get("/Users", startIndex=2, count=2).json()
    okta_probe = scim.get("/Users", startIndex=1, count=0).json()  # how many, nothing else

    assert page["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert (page["totalResults"], page["itemsPerPage"], page["startIndex"]) == (5, 2, 2)
    assert [item["id"] for item in page["Resources"]] == ids[1:3]
    assert (okta_probe["totalResults"], okta_probe["itemsPerPage"], okta_probe["Resources"]) == (5, 0, [])
    assert scim.get("/Users", startIndex=0, count=-3).json()["startIndex"] == 1


@pytest.mark.parametrize(
    "text",
    [
        'userName co "alice"',
        'displayName eq "Alice"',
        'userName eq "a" or userName eq "b"',
        'emails[type eq "work"]',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"',
    ],
)
def test_a_filter_we_cannot_answer_is_invalid_filter(scim: Scim, text: str) -> None:
    body = assert_scim_error(scim.get("/Users", filter=text), 400, "invalidFilter")
    assert "supported" in body["detail"]


@pytest.mark.parametrize("text", ["userName eq alice", "userName eq", '(userName eq "a"', 'userName zz "a"', "[]"])
def test_a_malformed_filter_is_invalid_filter(scim: Scim, text: str) -> None:
    assert_scim_error(scim.get("/Users", filter=text), 400, "invalidFilter")


def test_a_non_numeric_start_index_is_invalid_value(scim: Scim) -> None:
    assert_scim_error(scim.get("/Users", startIndex="first"), 400, "invalidValue")


def test_put_replaces_the_whole_resource(scim: Scim, api_factory: sessionmaker[Session], alice: dict[str, Any]) -> None:
    response = scim.put(f"/Users/{alice['id']}", {"userName": "alice@acme.example", "displayName": "Alice Smith"})

    body = response.json()
    assert response.status_code == 200
    assert body["displayName"] == "Alice Smith"
    assert "emails" not in body
    assert "externalId" not in body
    assert body["meta"]["created"] == alice["meta"]["created"]
    with api_factory() as session:
        name = session.scalar(select(Member.display_name).where(Member.email == "alice@acme.example"))
    assert name == "Alice Smith"


def test_put_errors(scim: Scim, alice: dict[str, Any]) -> None:
    scim.post("/Users", user_body("bob"))
    assert_scim_error(scim.put("/Users/nobody", user_body("alice")), 404)
    assert_scim_error(scim.put(f"/Users/{alice['id']}", user_body("bob")), 409, "uniqueness")
    assert_scim_error(scim.put(f"/Users/{alice['id']}", {"displayName": "x"}), 400, "invalidValue")
    assert scim.get(f"/Users/{alice['id']}").json() == alice


def test_entra_patch_quirks(scim: Scim, api_factory: sessionmaker[Session], alice: dict[str, Any]) -> None:
    response = scim.patch(
        f"/Users/{alice['id']}",
        {"op": "Replace", "path": "displayName", "value": "Alice L."},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "alice.l@acme.example"},
        {"op": "Replace", "path": "name.givenName", "value": "Ally"},
        {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Research"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", "value": "L."},
        {"op": "Replace", "path": "externalId", "value": "entra-42"},
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["displayName"] == "Alice L."
    assert body["emails"] == [{"primary": True, "value": "alice.l@acme.example", "type": "work"}]
    assert body["name"] == {"givenName": "Ally", "familyName": "L."}
    assert body[ENTERPRISE] == {"department": "Research"}
    assert ENTERPRISE in body["schemas"]
    assert body["externalId"] == "entra-42"
    assert member_status(api_factory, "alice.l@acme.example") is MemberStatus.INVITED  # the member follows the rename
    assert member_status(api_factory, "alice@acme.example") is None


def test_a_new_work_email_is_made_from_the_filter(scim: Scim) -> None:
    created = scim.post("/Users", {"userName": "dave@acme.example"}).json()

    body = scim.patch(
        f"/Users/{created['id']}", {"op": "add", "path": 'emails[type eq "work"].value', "value": "dave@acme.example"}
    ).json()

    assert body["emails"] == [{"type": "work", "value": "dave@acme.example"}]


def test_patch_without_path_takes_a_value_object(scim: Scim, alice: dict[str, Any]) -> None:
    body = scim.patch(
        f"/Users/{alice['id']}",
        {"op": "replace", "value": {"id": alice["id"], "userName": "ally@acme.example", "name.givenName": "Ally"}},
    ).json()

    assert body["userName"] == "ally@acme.example"
    assert body["name"]["givenName"] == "Ally"


def test_patch_remove_and_add_to_a_list(scim: Scim, alice: dict[str, Any]) -> None:
    url = f"/Users/{alice['id']}"
    scim.patch(url, {"op": "add", "path": "phoneNumbers", "value": [{"value": "555-0100", "type": "work"}]})
    scim.patch(url, {"op": "add", "path": "phoneNumbers", "value": [{"value": "555-0199", "type": "mobile"}]})
    body = scim.patch(url, {"op": "remove", "path": 'phoneNumbers[type eq "work"]'}).json()
    assert body["phoneNumbers"] == [{"value": "555-0199", "type": "mobile"}]

    body = scim.patch(url, {"op": "remove", "path": "phoneNumbers"}, {"op": "remove", "path": "name.familyName"}).json()
    assert "phoneNumbers" not in body
    assert body["name"] == {"givenName": "Alice"}


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "move", "path": "displayName", "value": "x"}, "invalidSyntax"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "replace", "path": "meta.created", "value": "x"}, "mutability"),
        ({"op": "replace", "path": "groups", "value": []}, "mutability"),
        ({"op": "replace", "path": "nonsense", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "name.nonsense", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'displayName[value eq "x"]', "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "emails[type eq ]", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[value co "zzz"].value', "value": "x"}, "noTarget"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
        ({"op": "replace", "value": "not an object"}, "invalidValue"),
        ({"op": "remove", "path": "userName"}, "invalidValue"),  # required
        ({"op": "replace", "path": "userName", "value": "bob@acme.example"}, "uniqueness"),
    ],
)
def test_a_refused_patch_changes_nothing(
    scim: Scim, api_factory: sessionmaker[Session], alice: dict[str, Any], operation: dict[str, Any], scim_type: str
) -> None:
    scim.post("/Users", user_body("bob"))
    before = documents(api_factory)

    response = scim.patch(
        f"/Users/{alice['id']}", {"op": "replace", "path": "displayName", "value": "Changed first"}, operation
    )

    assert_scim_error(response, 409 if scim_type == "uniqueness" else 400, scim_type)
    assert documents(api_factory) == before


@pytest.mark.parametrize(
    "body",
    [
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]},
        {"Operations": []},
        {"Operations": ["replace"]},
        [],
    ],
)
def test_a_malformed_patch_body_is_invalid_syntax(scim: Scim, alice: dict[str, Any], body: Any) -> None:
    response = scim.client.patch(f"/scim/v2/Users/{alice['id']}", json=body, headers=scim.headers())
    assert_scim_error(response, 400, "invalidSyntax")


def test_patch_an_unknown_user_is_404(scim: Scim) -> None:
    assert_scim_error(scim.patch("/Users/nobody", {"op": "replace", "value": {"active": False}}), 404)


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "Replace", "path": "active", "value": "False"},  # Entra ID
        {"op": "replace", "value": {"active": False}},  # Okta
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": False},
    ],
)
def test_deactivating_offboards_the_member_and_cancels_future_bookings(
    scim: Scim, api_factory: sessionmaker[Session], operation: dict[str, Any]
) -> None:
    with transaction(api_factory) as session:
        organisations.update_settings(
            session, session.get_one(Organisation, scim.org.organisation.id), directory_policy="auto_accept"
        )
        desk_id = desks.create(session, scim.org.organisation.id, "D1").id
    user = scim.post("/Users", user_body("alice")).json()
    start = utcnow() + timedelta(days=2)
    with transaction(api_factory) as session:
        member = members.get_by_email(session, scim.org.organisation.id, "alice@acme.example")
        booking_id = bookings.create(session, member, start=start, end=start + timedelta(hours=8), desk_id=desk_id).id

    response = scim.patch(f"/Users/{user['id']}", operation)

    assert response.json()["active"] is False
    assert member_status(api_factory, "alice@acme.example") is MemberStatus.REMOVED
    with api_factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
    removed = [event for event in events(api_factory, scim.org.organisation.id) if event.type == "membership.removed"]
    assert removed[-1].data["reason"] == "directory_offboarded"

    scim.patch(f"/Users/{user['id']}", {"op": "Replace", "path": "active", "value": "True"})
    assert member_status(api_factory, "alice@acme.example") is MemberStatus.ACTIVE  # back again


def test_delete_offboards_and_the_user_is_gone(
    scim: Scim, api_factory: sessionmaker[Session], alice: dict[str, Any]
) -> None:
    response = scim.delete(f"/Users/{alice['id']}")

    assert response.status_code == 204
    assert member_status(api_factory, "alice@acme.example") is MemberStatus.REMOVED
    assert_scim_error(scim.get(f"/Users/{alice['id']}"), 404)
    assert_scim_error(scim.delete(f"/Users/{alice['id']}"), 404)
    assert scim.get("/Users").json()["totalResults"] == 0
    assert scim.post("/Users", user_body("alice")).status_code == 201  # the userName is free again
