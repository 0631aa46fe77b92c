import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.ratelimit import RedisCounter
from store.db import transaction
from store.services import members, organisations
from tests.conftest import Org, auth, make_client

ROUTE = "/api/my_upcoming_bookings/"


def test_no_token_and_bad_tokens_are_401(client: TestClient, org: Org) -> None:
    cases = {
        "": "Authentication credentials were not provided.",
        "Basic abc": "Use the header 'Authorization: token <your secret token>'.",
        "token ": "Use the header 'Authorization: token <your secret token>'.",
        "token dsk_wrong": "Invalid token.",
    }
    for header, detail in cases.items():
        response = client.get(ROUTE, headers={"Authorization": header} if header else {})
        assert response.status_code == 401, header
        assert response.json() == {"detail": detail}
        assert response.headers["www-authenticate"] == "Token"


def test_bearer_is_accepted_too(client: TestClient, org: Org) -> None:
    assert client.get(ROUTE, headers={"Authorization": f"Bearer {org.member_token}"}).status_code == 200


def test_organisation_switch_off_is_403(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with transaction(api_factory) as session:
        organisations.update_settings(session, session.merge(org.organisation), api_enabled=False)

    response = client.get(ROUTE, headers=auth(org.member_token))

    assert response.status_code == 403
    assert "turned off for this organisation" in response.json()["detail"]


def test_member_without_api_access_is_403(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with transaction(api_factory) as session:
        members.update(session, session.merge(org.member), api_access=False)

    response = client.get(ROUTE, headers=auth(org.member_token))

    assert response.status_code == 403
    assert "has not been given API access" in response.json()["detail"]


def test_daily_limit_in_memory(api_factory: sessionmaker[Session], org: Org) -> None:
    client = make_client(api_factory, rate_limit=3)
    headers = auth(org.member_token)

    remaining = [client.get(ROUTE, headers=headers).headers["x-ratelimit-remaining"] for _ in range(3)]
    refused = client.get(ROUTE, headers=headers)
    admin = client.get(ROUTE, headers=auth(org.admin_token))

    assert remaining == ["2", "1", "0"]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["x-ratelimit-limit"] == "3"
    assert "limit of 3" in refused.json()["detail"]
    assert admin.status_code == 200  # counted per member


def test_daily_limit_in_redis_is_shared_by_api_processes(
    api_factory: sessionmaker[Session], org: Org, redis_client: redis.Redis
) -> None:

    def process() -> TestClient:
        return make_client(api_factory, counter=RedisCounter(redis_client), rate_limit=2)

    first, second = process(), process()
    headers = auth(org.member_token)

    statuses = [first.get(ROUTE, headers=headers).status_code, second.get(ROUTE, headers=headers).status_code]
    third = first.get(ROUTE, headers=headers)

    assert statuses == [200, 200]
    assert third.status_code == 429
    keys = [key.decode() for key in redis_client.keys("ratelimit:*")]
    assert keys == [key for key in keys if key.startswith(f"ratelimit:{org.member.id}:")]
    assert 0 < redis_client.ttl(keys[0]) <= 86400
