"""The one outbound-URL guard (connectors.outbound) on each path a URL from input takes (issue 12,
finding 2): calendar feeds and webhooks, with private targets refused. A loopback listener stands
where the URL points and must receive nothing; each refusal names what was refused. (The Google
token endpoint: tests/connectors/google/test_auth_outbound.py; Graph links: below.)"""

from __future__ import annotations

import httpx
import pytest

from connectors import outbound
from connectors.ics.fetch import fetch
from connectors.microsoft.graph import GraphClient
from connectors.records import ConnectorError
from store.services.webhook_endpoints import WEBHOOK_URL
from tests.fakes.listener import Listener
from worker.webhooks.sender import Poster, SignedPost, make_client


@pytest.mark.parametrize(
    ("scheme", "host", "shown"),
    [("http", "127.0.0.1", "127.0.0.1"), ("webcal", "localhost", "localhost (127.0.0.1)")],
)
def test_a_private_calendar_feed_is_refused_and_receives_nothing(
    listener: Listener, scheme: str, host: str, shown: str
) -> None:
    url = f"{scheme}://{host}:{listener.port}/private/secret-token/basic.ics"
    with make_client(allow_private=False) as http, pytest.raises(outbound.UnsafeURL) as refused:
        fetch(http, url, None, timeout=5, max_bytes=1 << 20, max_redirects=3)

    assert str(refused.value) == (
        f"the calendar feed URL is refused: {shown} is a loopback address; only public addresses may be called"
    )
    assert "secret-token" not in str(refused.value)  # a feed's URL is a secret: only its host is named
    assert listener.connections == 0


def test_a_private_webhook_url_is_refused_when_entered_and_when_sent(listener: Listener) -> None:
    url = f"http://127.0.0.1:{listener.port}/hook"
    with pytest.raises(outbound.UnsafeURL, match=r"^the webhook URL is refused: 127\.0\.0\.1 is a loopback address"):
        outbound.check_url(url, allow_private=False, what=WEBHOOK_URL)

    poster = Poster(allow_private=False)
    try:
        [outcome] = poster.post_all([lambda: SignedPost(url, b"{}", {})])
    finally:
        poster.close()
    assert outcome.refused
    assert outcome.error is not None
    assert "the webhook URL is refused: 127.0.0.1 is a loopback address" in outcome.error
    assert listener.connections == 0


def test_the_listener_is_reached_when_private_targets_are_allowed(listener: Listener) -> None:
    # The control for the tests above: the same URL, with the deployment allowing private targets.
    with make_client(allow_private=True) as http, pytest.raises(ConnectorError):
        fetch(http, f"http://127.0.0.1:{listener.port}/basic.ics", None, timeout=5, max_bytes=1 << 20, max_redirects=3)
    assert listener.connections >= 1


def test_a_graph_link_to_another_host_is_not_followed(listener: Listener) -> None:
    # Graph's nextLink and deltaLink are followed with the bearer token: only on Graph's own origin.
    class NoToken:
        def token(self) -> str:
            raise AssertionError("no request may be made")

    graph = GraphClient(NoToken(), base_url="https://graph.microsoft.com/v1.0", http=httpx.Client())  # type: ignore[arg-type]
    with pytest.raises(ConnectorError, match=r"another host \(127\.0\.0\.1\); it was not followed"):
        graph.get_json(f"http://127.0.0.1:{listener.port}/v1.0/users?$skiptoken=x", permission="User.Read.All")
    assert graph.url("https://graph.microsoft.com/v1.0/users?$skiptoken=x").startswith("https://graph.microsoft.com/")
    assert listener.connections == 0
