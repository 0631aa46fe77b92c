from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.context import ApiContext
from api.ratelimit import MemoryCounter


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_what_is_down(api_factory: sessionmaker[Session]) -> None:
    context = ApiContext(api_factory, MemoryCounter(), "http://testserver", lambda: False)
    response = TestClient(create_app(context)).get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "ok", "broker": "down"}}


def test_readyz_when_all_is_up(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
