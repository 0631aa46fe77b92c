"""What the edge stamps on every answer (items 2 and 5 of the integrator's issue): the WiggleDesk
document's security headers; `Allow` from the whole route table (on a 405, on OPTIONS, and on every
WiggleDesk-compatible answer); OPTIONS and HEAD answered; and the `X-RateLimit-*` figures on every answer
to a caller with a valid token, refusals made before any route ran included (and counted)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Org, auth, make_client

SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "SAMEORIGIN", "referrer-policy": "same-origin"}


def _requests(token: str) -> list[tuple[str, str, dict[str, object], int]]:
    """One request for each kind of answer: a route's success and error, an edge refusal, an unrouted path."""
    h = auth(token)
    return [
        ("GET", "/v1/desks", {"headers": h}, 200),
        ("GET", "/api/bookings/", {"headers": h}, 200),
        ("GET", "/v1/desks?limit=0", {"headers": h}, 422),
        ("POST", "/v1/desks", {"headers": h, "content": b"{", "json": None}, 400),
        ("POST", "/v1/desks", {"headers": {**h, "Content-Type": "text/plain"}, "content": b"x"}, 415),
        ("POST", "/v1/desks", {"headers": h, "json": {"label": "x" * 70_000}}, 413),
        ("DELETE", "/v1/desks", {"headers": h}, 405),
        ("GET", "/v1/nowhere", {"headers": h}, 404),
        ("GET", "/api/nowhere/", {"headers": h}, 404),
        ("GET", "/v1/desks/999999", {"headers": h}, 404),
    ]


def _send(client: TestClient, method: str, path: str, kwargs: dict[str, object]) -> httpx.Response:
    kwargs = dict(kwargs)
    if kwargs.get("json") is None:
        kwargs.pop("json", None)
        if "content" in kwargs and "Content-Type" not in kwargs["headers"]:  # type: ignore[operator]
            kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}  # type: ignore[dict-item]
    return client.request(method, path, **kwargs)  # type: ignore[arg-type]


def test_every_answer_carries_the_security_headers_and_rate_limits(client: TestClient, org: Org) -> None:
    remaining = []
    for method, path, kwargs, status in _requests(org.member_token):
        response = _send(client, method, path, kwargs)
        assert response.status_code == status, (method, path, response.text)
        for name, value in SECURITY.items():
            assert response.headers[name] == value, (method, path, name)
        assert response.headers["x-ratelimit-limit"] == "1000", (method, path)
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    # Each answer was counted once, those refused before any route ran included.
    assert remaining == list(range(999, 999 - len(remaining), -1))


def test_a_caller_without_a_valid_token_gets_no_rate_limit_figures(client: TestClient, org: Org) -> None:
    for headers in ({}, auth("dsk_not-a-token"), {"Authorization": "Basic eDp5"}):
        for method, path in (("GET", "/v1/desks"), ("DELETE", "/v1/desks"), ("GET", "/v1/nowhere")):
            response = client.request(method, path, headers=headers)
            assert "x-ratelimit-limit" not in response.headers, (method, path, headers)
            assert response.headers["x-content-type-options"] == "nosniff"


def test_the_security_headers_are_on_pages_and_public_answers(client: TestClient) -> None:
    for path in ("/healthz", "/docs", "/redoc", "/openapi.json", "/static-offline-docs/swagger-ui.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, (path, name)
    # A page that sets one of them itself keeps its own: never two values.
    page = client.get("/console/sign-in")
    for name in SECURITY:
        assert len(page.headers.get_list(name)) == 1, name


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/v1/desks", "GET, POST, HEAD, OPTIONS"),
        ("/v1/desks/1", "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("/api/bookings/", "GET, HEAD, OPTIONS"),
        ("/api/create_membership_invitation/", "POST, OPTIONS"),
        ("/api/create_membership_invitation/7/", "GET, HEAD, OPTIONS"),
    ],
)
def test_allow_names_every_method_of_the_path(client: TestClient, org: Org, path: str, allow: str) -> None:
    options = client.options(path)
    wrong = client.put(path, headers=auth(org.admin_token), json={})

    assert options.status_code == 200
    assert options.headers["allow"] == allow
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == allow
    # What Allow names is answered: no 405 for any of them.
    for method in allow.split(", "):
        assert client.request(method, path, headers=auth(org.admin_token)).status_code != 405, method


def test_options_answers_as_django_rest_framework(client: TestClient) -> None:
    response = client.options("/api/create_membership_invitation/")

    assert response.json() == {
        "name": "Create membership invitation",
        "description": "Invite someone by email; the invitation email goes out shortly after.",
        "renders": ["application/json"],
        "parses": ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
    }


def test_options_on_an_unrouted_path_is_404(client: TestClient) -> None:
    assert client.options("/v1/nowhere").status_code == 404


def test_compat_answers_carry_allow_as_django_rest_framework_does(client: TestClient, org: Org) -> None:
    created = client.post(
        "/api/create_membership_invitation/", json={"email_invited": "a@example.com"}, headers=auth(org.admin_token)
    )
    listed = client.get("/api/bookings/", headers=auth(org.member_token))

    assert created.status_code == 201
    assert created.headers["allow"] == "POST, OPTIONS"
    assert listed.headers["allow"] == "GET, HEAD, OPTIONS"


def test_head_is_the_get_without_its_body(client: TestClient, org: Org) -> None:
    for path in ("/v1/desks", "/api/bookings/", "/v1/organisation"):
        got = client.get(path, headers=auth(org.admin_token))
        head = client.head(path, headers=auth(org.admin_token))
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers["content-type"] == got.headers["content-type"]


def test_head_needs_the_token_as_the_get_does(client: TestClient) -> None:
    assert client.head("/v1/desks").status_code == 401


def test_refusals_past_the_limit_still_say_so(api_factory: sessionmaker[Session], org: Org) -> None:
    small = make_client(api_factory, rate_limit=2)
    answers = [small.get("/v1/nowhere", headers=auth(org.member_token)) for _ in range(3)]

    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
    assert small.get("/v1/desks", headers=auth(org.member_token)).status_code == 429
