from fastapi.testclient import TestClient

from tests.conftest import Org, auth


def test_my_upcoming_bookings_empty(client: TestClient, org: Org) -> None:
    response = client.get("/api/my_upcoming_bookings/", headers=auth(org.member_token))
    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert response.headers["x-ratelimit-limit"] == "1000"
