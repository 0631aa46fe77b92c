"""/openapi.json documents every /v1 route, its errors as problem+json, and closed request bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.v1.conftest import PUBLIC_CALLS, every_call


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def v1_operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
    }


def test_every_route_is_listed_and_tested(spec: dict[str, Any]) -> None:
    # The route table the access and isolation tests walk is exactly what the API serves.
    documented = set(v1_operations(spec))
    walked = {(call.method, call.template) for call in every_call() + PUBLIC_CALLS}
    assert documented == walked


def test_operations_are_described(spec: dict[str, Any]) -> None:
    for key, operation in v1_operations(spec).items():
        assert operation.get("summary"), key
        assert operation.get("description"), key
        assert operation.get("tags"), key
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert len(success) == 1, key
        if success[0] != "204":
            assert operation["responses"][success[0]]["content"]["application/json"]["schema"], key


def test_errors_are_problem_json(spec: dict[str, Any]) -> None:
    for key, operation in v1_operations(spec).items():
        errors = {code: r for code, r in operation["responses"].items() if code.startswith(("4", "5"))}
        assert errors, key
        for code, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (key, code)
        if key != ("POST", "/v1/invitations/accept"):
            assert {"401", "403", "429"} <= set(errors), key
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in errors, key


def test_request_bodies_refuse_unknown_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for key, operation in v1_operations(spec).items():
        body = operation.get("requestBody")
        if body is None:
            continue
        schema = body["content"]["application/json"]["schema"]
        ref = schema.get("$ref") or next(s["$ref"] for s in schema["anyOf"] if "$ref" in s)
        assert schemas[ref.rsplit("/", 1)[-1]]["additionalProperties"] is False, key


def test_times_are_documented_as_date_time(spec: dict[str, Any]) -> None:
    booking = spec["components"]["schemas"]["BookingOut"]["properties"]
    assert booking["start"]["format"] == "date-time"
    params = {p["name"]: p for p in spec["paths"]["/v1/bookings"]["get"]["parameters"]}
    assert {"from", "to", "member_id", "team_id", "desk_id", "status", "cursor", "limit"} <= set(params)


def test_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.text
