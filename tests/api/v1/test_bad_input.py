"""Malformed, non-JSON and oversized bodies are refused on every /v1 route that takes a body, and
nothing is written."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.conftest import PUBLIC_CALLS, Call, World, assert_problem, every_call, nothing_written
from tests.conftest import auth

BODY_CALLS = [
    call for call in every_call() + PUBLIC_CALLS if call.json is not None or call.template.endswith("/cancel")
]


def call_id(call: Call) -> str:
    return f"{call.method} {call.template}"


def send(client: TestClient, call: Call, world: World, content: bytes, content_type: str) -> httpx.Response:
    headers = {**auth(world.org.admin_token), "Content-Type": content_type}
    response: httpx.Response = client.request(call.method, call.path(world.ids()), content=content, headers=headers)
    return response


@pytest.mark.parametrize("call", BODY_CALLS, ids=call_id)
def test_malformed_json_is_400(
    client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call
) -> None:
    for content in (b'{"name": ', b"{'single': 'quotes'}", b"\xff\xfe"):
        with nothing_written(api_factory):
            response = send(client, call, world, content, "application/json")
        body = assert_problem(response, 400, "malformed_json")
        assert "not valid JSON" in body["detail"]


@pytest.mark.parametrize("call", BODY_CALLS, ids=call_id)
def test_body_that_is_not_an_object_is_422(
    client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call
) -> None:
    for content in (b"[]", b'"text"', b"42"):
        with nothing_written(api_factory):
            response = send(client, call, world, content, "application/json")
        assert_problem(response, 422, "invalid_input")


@pytest.mark.parametrize("call", BODY_CALLS, ids=call_id)
def test_wrong_content_type_is_415(
    client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        with nothing_written(api_factory):
            response = send(client, call, world, b'{"name": "x"}', content_type)
        assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("call", BODY_CALLS, ids=call_id)
def test_oversized_body_is_413(
    client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call
) -> None:
    # CSV imports take whole directories (10 MiB by default); every other route a small body (64 KiB).
    limit = 10 * 1024 * 1024 if call.template.endswith("/import") else 64 * 1024
    huge = b'{"details": "' + b"x" * limit + b'"}'
    with nothing_written(api_factory):
        response = send(client, call, world, huge, "application/json")
    assert_problem(response, 413, "body_too_large")


def test_oversized_body_without_length_is_413(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"label": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    headers = {**auth(world.org.admin_token), "Content-Type": "application/json"}
    with nothing_written(api_factory):
        response = client.post("/v1/desks", content=chunks(), headers=headers)
    assert_problem(response, 413, "body_too_large")


def test_json_with_charset_and_problem_json_are_accepted(client: TestClient, world: World) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.patch(
            f"/v1/desks/{world.desk_id}",
            content=b'{"zone": "East"}',
            headers={**auth(world.org.admin_token), "Content-Type": content_type},
        )
        assert response.status_code == 200, response.text
