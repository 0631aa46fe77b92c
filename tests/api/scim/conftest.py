"""A SCIM connection of its own for each test, and a client that speaks SCIM with its token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import ConnectionKind
from store.secret_box import SecretBox
from store.services import connections
from tests.conftest import Org, make_client

BOX = SecretBox([SecretBox.generate_key()])
SCIM_JSON = "application/scim+json"


@dataclass
class Scim:
    """The API, and the SCIM token of one connection of `org`."""

    client: TestClient
    token: str
    connection_id: int
    org: Org

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": SCIM_JSON, **extra}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/scim/v2{path}", params=params, headers=self.headers())

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(f"/scim/v2{path}", json=body, headers=self.headers())

    def put(self, path: str, body: Any) -> Any:
        return self.client.put(f"/scim/v2{path}", json=body, headers=self.headers())

    def patch(self, path: str, *operations: dict[str, Any]) -> Any:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}
        return self.client.patch(f"/scim/v2{path}", json=body, headers=self.headers())

    def delete(self, path: str) -> Any:
        return self.client.delete(f"/scim/v2{path}", headers=self.headers())


def connect(factory: sessionmaker[Session], org: Org, **settings: Any) -> tuple[int, str]:
    """A SCIM connection of `org` with `settings`; returns its id and bearer token."""
    with transaction(factory) as session:
        connection, token = connections.create(
            session, BOX, org.organisation.id, ConnectionKind.SCIM, "Okta", settings=settings
        )
        assert token is not None
        return connection.id, token


@pytest.fixture
def scim(api_factory: sessionmaker[Session], org: Org) -> Scim:
    connection_id, token = connect(api_factory, org)
    return Scim(make_client(api_factory, secret_box=BOX), token, connection_id, org)


def user_body(name: str = "alice", **fields: Any) -> dict[str, Any]:
    """A User as Okta creates one."""
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"{name}@acme.example",
        "name": {"givenName": name.title(), "familyName": "Liddell"},
        "emails": [{"primary": True, "value": f"{name}@acme.example", "type": "work"}],
        "active": True,
    }
    body.update(fields)
    return body
