"""Real request bodies from identity providers (../shared/reference/data/scim/*.json, when present),
replayed against the API: a User or Group is created or refused with a SCIM error; a PatchOp is
applied to a User and to a Group, or refused with one. Never a 500, never an error in another shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.scim.conftest import Scim, user_body
from tests.api.scim.test_users import assert_scim_error
from tests.conftest import SHARED_DATA, shared_data

FILES = sorted(path.name for path in (SHARED_DATA / "scim").glob("*.json")) or ["(reference data absent)"]
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def answered(response: Any, *ok: int) -> None:
    if response.status_code in ok:
        return
    assert 400 <= response.status_code < 500, response.text
    assert_scim_error(response, response.status_code, response.json().get("scimType"))


@pytest.mark.parametrize("name", FILES)
def test_every_real_request_is_applied_or_refused_as_scim(scim: Scim, name: str) -> None:
    body = json.loads(shared_data("scim", name).read_text(encoding="utf-8"))
    body = body.get("body", body) if isinstance(body, dict) else body  # a recorded request may wrap its body
    schemas = [str(item) for item in body.get("schemas", [])] if isinstance(body, dict) else []

    if PATCH_OP in schemas:
        user = scim.post("/Users", user_body("target")).json()["id"]
        group = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Target"}).json()["id"]
        answered(scim.client.patch(f"/scim/v2/Users/{user}", json=body, headers=scim.headers()), 200)
        answered(scim.client.patch(f"/scim/v2/Groups/{group}", json=body, headers=scim.headers()), 200)
    elif GROUP in schemas:
        answered(scim.post("/Groups", body), 201)
    else:
        answered(scim.post("/Users", body), 201)
