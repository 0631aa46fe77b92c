"""/openapi.json documents every /v1 route, its errors as problem+json, and closed request bodies."""

from __future__ import annotations

import re
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


def test_docs_pages_load_only_local_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200
        assert "openapi.json" in response.text
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert sources, page
        for source in sources:
            assert source.startswith("/"), (page, source)  # no CDN: the page works offline
            assert client.get(source).status_code == 200, source


# What the routes behind a token declare: either scheme, as alternatives (`Token <secret>` or `Bearer <secret>`).
EITHER_SCHEME = [{"token": []}, {"bearer": []}]


def test_security_schemes_are_declared_on_every_operation_behind_a_token(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["token"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["token"]["description"],
    }
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    public = {("POST", "/v1/invitations/accept"), ("GET", "/healthz"), ("GET", "/readyz")}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            if key in public:
                assert "security" not in operation, key
            else:
                assert operation.get("security") == EITHER_SCHEME, key


def test_compat_routes_document_their_parameters_bodies_and_answers(spec: dict[str, Any]) -> None:
    compat = {path: ops for path, ops in spec["paths"].items() if path.startswith("/api/")}
    assert len(compat) == 8
    for path, operations in compat.items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (path, parameter["name"])
            if method == "get" and "{member_id}" not in path:
                assert "page" in names, path
            answer = operation["responses"]["201" if method == "post" else "200"]["content"]["application/json"]
            assert answer["schema"]["$ref"], path
            if method == "post":
                body = operation["requestBody"]
                assert body["required"] is True
                assert body["content"]["application/json"]["example"] == {"email_invited": "example@example.com"}
                assert "x-www-form-urlencoded" in body["description"]
                assert "multipart/form-data" in body["description"]
    team = {p["name"]: p for p in compat["/api/teams_upcoming_bookings/"]["get"]["parameters"]}
    assert team["team_name"]["required"] is True
    example = spec["components"]["schemas"]["BookingPage"]["examples"][0]["results"][0]
    assert example["start_date"] == "2022-08-27 09:00"  # the WiggleDesk document's own example


def test_error_answers_refer_to_one_schema_each(spec: dict[str, Any]) -> None:
    # Inlined, each error schema would become a model per operation in generated clients.
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    for media in response.get("content", {}).values():
                        schema = media["schema"]
                        refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
                        assert any(refs), (method, path, code)
