"""/scim/v2 as a whole: bearer tokens, media types, discovery, and SCIM errors for what we do not serve."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Connection
from store.services import connections
from tests.api.scim.conftest import SCIM_JSON, Scim, connect, user_body
from tests.api.scim.test_users import assert_scim_error
from tests.conftest import Org, make_client, make_org


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer dbscim_wrong", "Basic dXNlcjpwYXNz", "token dbscim_x"],
)
def test_a_missing_or_wrong_token_is_401(scim: Scim, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for response in (
        scim.client.get("/scim/v2/Users", headers=headers),
        scim.client.get("/scim/v2/ServiceProviderConfig", headers=headers),
        scim.client.post("/scim/v2/Users", json=user_body(), headers={**headers, "Content-Type": SCIM_JSON}),
        scim.client.get("/scim/v2/Nowhere", headers=headers),
    ):
        assert_scim_error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_api_token_is_not_a_scim_token(scim: Scim) -> None:
    response = scim.client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {scim.org.admin_token}"})
    assert_scim_error(response, 401)


def test_a_rotated_token_stops_working(scim: Scim, api_factory: sessionmaker[Session]) -> None:
    with transaction(api_factory) as session:
        new_token = connections.rotate_scim_token(session, session.get_one(Connection, scim.connection_id))

    assert_scim_error(scim.get("/Users"), 401)
    assert scim.client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200


def test_each_connection_sees_only_its_own_users(scim: Scim, api_factory: sessionmaker[Session]) -> None:
    created = scim.post("/Users", user_body()).json()
    _, other_token = connect(api_factory, make_org(api_factory, "Globex"))
    other = Scim(scim.client, other_token, 0, scim.org)

    assert other.get("/Users").json()["totalResults"] == 0
    assert_scim_error(other.get(f"/Users/{created['id']}"), 404)
    assert other.post("/Users", user_body()).status_code == 201  # the same userName elsewhere is fine


def test_bodies_may_be_sent_as_application_json(scim: Scim) -> None:
    response = scim.client.post("/scim/v2/Users", json=user_body(), headers={"Authorization": f"Bearer {scim.token}"})
    assert response.status_code == 201
    assert response.headers["content-type"] == SCIM_JSON


def test_a_body_that_is_not_json_is_invalid_syntax(scim: Scim) -> None:
    for content in (b"{not json", b"", b"\xff\xfe"):
        response = scim.client.post("/scim/v2/Users", content=content, headers=scim.headers())
        assert_scim_error(response, 400, "invalidSyntax")


def test_other_media_types_are_refused_before_scim_sees_them(scim: Scim) -> None:
    # api/middleware.Guard refuses non-JSON bodies for the whole app, in problem+json: not SCIM's shape.
    response = scim.client.post(
        "/scim/v2/Users", content=b"userName=a", headers={**scim.headers(), "Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_service_provider_config_is_honest(scim: Scim) -> None:
    response = scim.get("/ServiceProviderConfig")
    body = response.json()

    assert response.headers["content-type"] == SCIM_JSON
    assert body["patch"] == {"supported": True}
    assert body["filter"] == {"supported": True, "maxResults": 100}
    for feature in ("bulk", "sort", "etag", "changePassword"):
        assert body[feature]["supported"] is False
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_and_schemas(scim: Scim) -> None:
    types = scim.get("/ResourceTypes").json()
    assert [item["id"] for item in types["Resources"]] == ["User", "Group"]
    assert scim.get("/ResourceTypes/User").json()["schemaExtensions"] == [
        {"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": False}
    ]
    schemas = scim.get("/Schemas").json()
    assert schemas["totalResults"] == 3
    user = scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    by_name = {item["name"]: item for item in user["attributes"]}
    assert by_name["userName"]["required"] is True
    assert by_name["userName"]["uniqueness"] == "server"
    assert by_name["active"]["type"] == "boolean"
    assert "password" not in by_name  # never kept, so not offered
    assert_scim_error(scim.get("/ResourceTypes/Device"), 404)
    assert_scim_error(scim.get("/Schemas/urn:example:nothing"), 404)


def test_unknown_paths_are_404_and_wrong_methods_405(scim: Scim) -> None:
    assert_scim_error(scim.get("/Devices"), 404)
    response = scim.client.delete("/scim/v2/ServiceProviderConfig", headers=scim.headers())
    assert_scim_error(response, 405)
    assert response.headers["allow"] == "GET"
    response = scim.client.post("/scim/v2/Users/abc", json={}, headers=scim.headers())
    assert_scim_error(response, 405)
    assert response.headers["allow"] == "DELETE, GET, PATCH, PUT"


def test_search_across_types_is_not_implemented(scim: Scim) -> None:
    assert_scim_error(scim.post("/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}), 501)


def test_scim_stays_out_of_the_openapi_document(api_factory: sessionmaker[Session], org: Org) -> None:
    # SCIM describes itself through /Schemas and /ResourceTypes.
    paths = make_client(api_factory).get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/scim")]
