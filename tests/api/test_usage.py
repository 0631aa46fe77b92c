import pytest
from sqlalchemy.orm import Session, sessionmaker

from api.usage import TokenUsage
from store.models import ApiToken
from tests.conftest import Org, auth


def _last_used(factory: sessionmaker[Session], token_id: int) -> object:
    with factory() as session:
        return session.get_one(ApiToken, token_id).last_used_at


def test_uses_are_written_in_one_batch(api_factory: sessionmaker[Session], org: Org) -> None:
    usage = TokenUsage(api_factory, interval=3600)
    with api_factory() as session:
        ids = [t.id for t in session.query(ApiToken).order_by(ApiToken.id)]

    for token_id in ids:
        usage.note(token_id)
    assert [_last_used(api_factory, i) for i in ids] == [None, None]
    usage.flush()

    assert all(_last_used(api_factory, i) is not None for i in ids)


def test_a_use_says_when_the_interval_is_due(api_factory: sessionmaker[Session], org: Org) -> None:
    assert TokenUsage(api_factory, interval=0).note(1) is True
    assert TokenUsage(api_factory, interval=3600).note(1) is False


@pytest.mark.parametrize("path", ["/api/my_upcoming_bookings/", "/v1/bookings"])  # on the event loop; in a thread
def test_a_due_interval_is_flushed_by_the_request_that_finds_it(
    api_factory: sessionmaker[Session], org: Org, path: str
) -> None:
    from tests.conftest import make_client

    client = make_client(api_factory)
    client.app.state.token_usage = TokenUsage(api_factory, interval=0)  # type: ignore[attr-defined]

    assert client.get(path, headers=auth(org.member_token)).status_code == 200

    with api_factory() as session:
        used = {t.member_id for t in session.query(ApiToken) if t.last_used_at is not None}
    assert used == {org.member.id}


def test_the_api_notes_each_caller_and_flushes_on_shutdown(api_factory: sessionmaker[Session], org: Org) -> None:
    from tests.conftest import make_client

    with make_client(api_factory) as client:
        assert client.get("/api/bookings/", headers=auth(org.member_token)).status_code == 200
        with api_factory() as session:
            assert all(t.last_used_at is None for t in session.query(ApiToken))
    with api_factory() as session:
        used = {t.member_id for t in session.query(ApiToken) if t.last_used_at is not None}
    assert used == {org.member.id}
