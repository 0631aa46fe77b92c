"""The one check of an http(s) address typed in (connectors.kind.web_address), as the ICS and CalDAV kinds
take it: what passes, what is refused, and that a refusal never repeats the address (it may hold a secret)."""

from __future__ import annotations

import pytest

from connectors.kind import MAX_ADDRESS, KindInvalid, web_address
from connectors.kinds import REGISTRY

SECRET = "s3cr3t-token"


@pytest.mark.parametrize(
    "url",
    ["https://cal.example/a.ics", "http://10.0.0.1:8080/x", "HTTPS://Cal.Example", "https://[::1]/dav/",
     " https://cal.example/padded ", "https://" + "x" * (MAX_ADDRESS - len("https://"))],
)  # fmt: skip
def test_http_and_https_addresses_with_a_host_pass(url: str) -> None:
    assert web_address(url) == url.strip()
    assert web_address(url, webcal=True, userinfo=False) == url.strip()


@pytest.mark.parametrize(
    "url",
    [f"ftp://cal.example/{SECRET}", f"{SECRET}.ics", f"javascript:{SECRET}", f"https:///{SECRET}",
     f"https://[::1/{SECRET}", "https://" + SECRET * 200, f"webcal://cal.example/{SECRET}", 42, None, "", "  "],
)  # fmt: skip
def test_other_addresses_are_refused_without_repeating_them(url: object) -> None:
    with pytest.raises(ValueError, match="must be") as refused:
        web_address(url)
    assert SECRET not in str(refused.value)


def test_webcal_is_taken_only_where_asked() -> None:
    assert web_address("webcal://cal.example/a.ics", webcal=True) == "webcal://cal.example/a.ics"
    assert web_address("webcals://cal.example/a.ics", webcal=True) == "webcals://cal.example/a.ics"
    with pytest.raises(ValueError, match="http, https or webcal"):
        web_address("gopher://cal.example", webcal=True)


def test_a_user_and_password_are_refused_where_they_are_credentials_of_their_own() -> None:
    assert web_address(f"https://will:{SECRET}@cal.example/a.ics") == f"https://will:{SECRET}@cal.example/a.ics"
    with pytest.raises(ValueError, match="user or password") as refused:
        web_address(f"https://will:{SECRET}@dav.example/", userinfo=False)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "credentials", "ending"),
    [
        ("ics", {"url": f"ftp://cal.example/{SECRET}"}, "must be an http, https or webcal address"),
        ("ics", {"url": "https://" + "x" * MAX_ADDRESS}, f"of at most {MAX_ADDRESS} characters"),
        ("caldav", {"url": f"webcal://dav.example/{SECRET}", "username": "u", "password": "p"}, "http or https"),
        ("caldav", {"url": f"https://u:{SECRET}@dav.example/", "username": "u", "password": "p"}, "user or password"),
    ],
)
def test_both_kinds_refuse_through_their_credentials(kind: str, credentials: dict[str, str], ending: str) -> None:
    with pytest.raises(KindInvalid) as refused:
        REGISTRY.check_credentials(kind, credentials)
    assert refused.value.field == "credentials.url"
    assert ending in refused.value.message
    assert SECRET not in refused.value.message


def test_both_kinds_take_a_good_address() -> None:
    REGISTRY.check_credentials("ics", {"url": "webcal://cal.example/a.ics"})
    REGISTRY.check_credentials("caldav", {"url": "https://dav.example/", "username": "u", "password": "p"})
