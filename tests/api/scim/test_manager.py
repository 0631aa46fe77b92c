"""The enterprise `manager` as identity providers send it: a bare id (Entra ID), an object, or removed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.scim.conftest import Scim, user_body
from tests.api.scim.test_users import assert_scim_error

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager"


@pytest.fixture
def boss(scim: Scim) -> str:
    response = scim.post("/Users", user_body("boss"))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def alice(scim: Scim) -> dict[str, Any]:
    response = scim.post("/Users", user_body("alice"))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("shape", ["string", "object"])
def test_post_takes_the_manager_as_an_id_or_an_object(scim: Scim, boss: str, shape: str) -> None:
    manager: Any = boss if shape == "string" else {"value": boss}
    body = user_body("carol", **{ENTERPRISE: {"department": "Sales", "manager": manager}})
    body["schemas"] = [*body["schemas"], ENTERPRISE]

    response = scim.post("/Users", body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created[ENTERPRISE] == {"department": "Sales", "manager": {"value": boss}}
    assert scim.get(f"/Users/{created['id']}").json()[ENTERPRISE]["manager"] == {"value": boss}


def test_put_takes_the_manager_as_a_bare_id(scim: Scim, boss: str, alice: dict[str, Any]) -> None:
    response = scim.put(f"/Users/{alice['id']}", user_body("alice", **{ENTERPRISE: {"manager": boss}}))

    assert response.status_code == 200, response.text
    assert response.json()[ENTERPRISE] == {"manager": {"value": boss}}


@pytest.mark.parametrize("op", ["Add", "Replace"])
def test_entra_patch_sends_the_manager_as_a_string(scim: Scim, boss: str, alice: dict[str, Any], op: str) -> None:
    response = scim.patch(f"/Users/{alice['id']}", {"op": op, "path": MANAGER, "value": boss})

    assert response.status_code == 200, response.text
    assert response.json()[ENTERPRISE] == {"manager": {"value": boss}}


def test_patch_replaces_then_removes_the_manager(scim: Scim, boss: str, alice: dict[str, Any]) -> None:
    other = scim.post("/Users", user_body("other")).json()["id"]
    scim.patch(f"/Users/{alice['id']}", {"op": "add", "path": MANAGER, "value": {"value": boss}})

    replaced = scim.patch(f"/Users/{alice['id']}", {"op": "replace", "path": MANAGER, "value": other})
    assert replaced.json()[ENTERPRISE] == {"manager": {"value": other}}

    removed = scim.patch(f"/Users/{alice['id']}", {"op": "Remove", "path": MANAGER})
    assert removed.status_code == 200, removed.text
    assert ENTERPRISE not in removed.json()
    assert ENTERPRISE not in scim.get(f"/Users/{alice['id']}").json()


def test_an_empty_manager_id_removes_it(scim: Scim, boss: str, alice: dict[str, Any]) -> None:
    scim.patch(f"/Users/{alice['id']}", {"op": "add", "path": MANAGER, "value": boss})

    response = scim.patch(f"/Users/{alice['id']}", {"op": "Replace", "path": MANAGER, "value": ""})

    assert response.status_code == 200, response.text
    assert ENTERPRISE not in response.json()


def test_patch_without_path_takes_the_manager_by_its_urn(scim: Scim, boss: str, alice: dict[str, Any]) -> None:
    response = scim.patch(f"/Users/{alice['id']}", {"op": "add", "value": {MANAGER: boss}})

    assert response.status_code == 200, response.text
    assert response.json()[ENTERPRISE] == {"manager": {"value": boss}}


@pytest.mark.parametrize("value", [True, ["a", "b"], 1.5])
def test_a_manager_that_is_neither_an_id_nor_an_object_is_invalid_value(
    scim: Scim, alice: dict[str, Any], value: Any
) -> None:
    response = scim.patch(f"/Users/{alice['id']}", {"op": "Replace", "path": MANAGER, "value": value})

    body = assert_scim_error(response, 400, "invalidValue")
    assert "manager" in body["detail"]
    assert ENTERPRISE not in scim.get(f"/Users/{alice['id']}").json()
