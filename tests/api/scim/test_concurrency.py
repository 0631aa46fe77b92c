"""SCIM writes sent at once, as Entra ID and Okta send them: real requests to a served app, on both stores.

Identity providers send membership changes of one group in parallel; every one of them must stay.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from store.models import DirectoryMembership, DirectoryUser
from tests.api.scim.conftest import BOX, connect, user_body
from tests.conftest import api_context, make_org

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CALLERS = 20


@pytest.fixture
def served(session_factory: sessionmaker[Session]) -> Iterator[str]:
    """The API under uvicorn on a free loopback port (SQLite or PostgreSQL behind it); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(
        api_context(
            session_factory,
            public_base_url=base,
            secret_box=BOX,
            max_body_bytes=1024 * 1024,
            allow_private_webhooks=False,
        )
    )
    runner = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield base
    runner.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(params=[False, True], ids=["plain", "teams"])
def scim_http(
    request: pytest.FixtureRequest, served: str, session_factory: sessionmaker[Session]
) -> Iterator[tuple[httpx.Client, int]]:
    """An httpx client speaking SCIM with a new connection's token, and the connection's id; the
    connection mirrors every group as a team, or none."""
    org = make_org(session_factory)
    connection_id, token = connect(session_factory, org, **({"team_groups": ["*"]} if request.param else {}))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    limits = httpx.Limits(max_connections=CALLERS)
    with httpx.Client(base_url=f"{served}/scim/v2", headers=headers, timeout=60, limits=limits) as client:
        yield client, connection_id


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Every call on its own thread, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def stored_members(factory: sessionmaker[Session], connection_id: int, group_id: str) -> int:
    with factory() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    DirectoryMembership.connection_id == connection_id,
                    DirectoryMembership.group_external_id == group_id,
                )
            )
            or 0
        )


def test_concurrent_member_adds_all_stay(
    scim_http: tuple[httpx.Client, int], session_factory: sessionmaker[Session]
) -> None:
    client, connection_id = scim_http
    people = [client.post("/Users", json=user_body(f"person{n}")).json()["id"] for n in range(CALLERS)]
    group = client.post("/Groups", json={"displayName": "Engineering"}).json()["id"]

    def add(person: str) -> Callable[[], httpx.Response]:
        operation = {"op": "Add", "path": "members", "value": [{"value": person}]}
        return lambda: client.patch(f"/Groups/{group}", json=patch_body(operation))

    responses = at_once([add(person) for person in people])

    assert [response.status_code for response in responses] == [200] * CALLERS
    listed = {item["value"] for item in client.get(f"/Groups/{group}").json()["members"]}
    assert listed == set(people)
    assert stored_members(session_factory, connection_id, group) == CALLERS


def test_concurrent_member_removes_and_adds_keep_the_rest(
    scim_http: tuple[httpx.Client, int], session_factory: sessionmaker[Session]
) -> None:
    client, connection_id = scim_http
    people = [client.post("/Users", json=user_body(f"person{n}")).json()["id"] for n in range(CALLERS)]
    staying, leaving = people[: CALLERS // 2], people[CALLERS // 2 :]
    group_body = {"displayName": "Sales", "members": [{"value": person} for person in leaving]}
    group = client.post("/Groups", json=group_body).json()["id"]

    def change(person: str) -> Callable[[], httpx.Response]:
        if person in leaving:  # Entra ID's removal: a value list, no filter
            operation = {"op": "Remove", "path": "members", "value": [{"value": person}]}
        else:  # Okta's: a filter in the path for removals, a value list for adds
            operation = {"op": "add", "path": "members", "value": [{"value": person}]}
        return lambda: client.patch(f"/Groups/{group}", json=patch_body(operation))

    responses = at_once([change(person) for person in people])

    assert [response.status_code for response in responses] == [200] * CALLERS
    listed = {item["value"] for item in client.get(f"/Groups/{group}").json().get("members", [])}
    assert listed == set(staying)
    assert stored_members(session_factory, connection_id, group) == len(staying)


def test_concurrent_creates_of_one_username_make_one_user(
    scim_http: tuple[httpx.Client, int], session_factory: sessionmaker[Session]
) -> None:
    client, connection_id = scim_http
    callers = 5

    responses = at_once([lambda: client.post("/Users", json=user_body("alice"))] * callers)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (callers - 1)
    conflict = next(response.json() for response in responses if response.status_code == 409)
    assert conflict["scimType"] == "uniqueness"
    with session_factory() as session:
        live = session.scalar(
            select(func.count()).where(DirectoryUser.connection_id == connection_id, DirectoryUser.deleted.is_(False))
        )
    assert live == 1


def test_member_adds_to_two_groups_and_deletes_of_people_at_once(
    scim_http: tuple[httpx.Client, int], session_factory: sessionmaker[Session]
) -> None:
    client, connection_id = scim_http
    people = [client.post("/Users", json=user_body(f"person{n}")).json()["id"] for n in range(10)]
    leaving, staying = people[:4], people[4:]
    groups = [client.post("/Groups", json={"displayName": name}).json()["id"] for name in ("North", "South")]
    for group in groups:  # the leavers are members already, as the provider announced them earlier
        body = patch_body({"op": "add", "path": "members", "value": [{"value": person} for person in leaving]})
        assert client.patch(f"/Groups/{group}", json=body).status_code == 200

    def add(group: str, person: str) -> Callable[[], httpx.Response]:
        operation = {"op": "Add", "path": "members", "value": [{"value": person}]}
        return lambda: client.patch(f"/Groups/{group}", json=patch_body(operation))

    def delete(person: str) -> Callable[[], httpx.Response]:
        return lambda: client.delete(f"/Users/{person}")

    calls = [add(group, person) for group in groups for person in staying] + [delete(person) for person in leaving]
    responses = at_once(calls)

    assert sorted(response.status_code for response in responses) == [200] * 12 + [204] * 4
    for group in groups:
        listed = {item["value"] for item in client.get(f"/Groups/{group}").json().get("members", [])}
        assert listed == set(staying)
        assert stored_members(session_factory, connection_id, group) == len(staying)
