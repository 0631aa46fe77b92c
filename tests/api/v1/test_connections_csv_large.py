"""POST /v1/connections/{id}/import takes files as large as the CLI does: 2,000 people (about 135 KiB)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.test_connections_csv import connect, send
from tests.conftest import Org

PEOPLE = 2000


def test_a_two_thousand_person_file_is_planned_whole(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = connect(client, org)
    rows = "".join(
        f"person.{n:04}@acme.example,Person Number {n:04},Engineering;Office {n % 7},true\n" for n in range(PEOPLE)
    )
    text = "email,name,teams,active\n" + rows
    assert len(text.encode()) > 128 * 1024

    plan = send(client, org, connection_id, text, dry_run=True)

    assert (plan["rows"], plan["errors"], plan["counts"]["invited"]) == (PEOPLE, [], PEOPLE)
