"""The outbound-URL guard: every URL that comes from input (a webhook, a calendar feed, a service-account
key's token endpoint) is called only where it may be, so deskbridge cannot be made to call into its
own network (server-side request forgery).

`check_url` vets a URL when it is entered; `resolve_safe` vets the addresses a host resolves to at the
moment of connecting, so a name that resolved to a public address when entered and to 127.0.0.1 later
(DNS rebinding) is still refused; `check_address` vets a host that is an IP address. `CheckedTransport`
is httpx's transport with these checks at connect time (no request, redirect or retry can get past
them); the webhook sender's aiohttp resolver and google-auth's token requests use the same rules.

Private, loopback and link-local targets pass only when the deployment allows them (the embedded mode
and tests); cloud metadata addresses never do: nothing legitimate lives there, and they hand out
credentials. Refusals name what was refused ("the calendar feed URL is refused: …") and the host,
never the whole URL (a feed's URL is often a secret).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack…
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOWED_SCHEMES = frozenset({"http", "https"})
PUBLIC_ONLY = "only public addresses may be called"
THE_URL = "the URL"

_warned = threading.Event()


class UnsafeURL(ValueError):
    """A URL (or the address it resolves to) that deskbridge refuses to call; `what` names the URL's role."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what} is refused: {problem}")
        self.what = what
        self.problem = problem

    def about(self, what: str) -> UnsafeURL:
        """The same refusal, naming the URL's role as `what` ("the calendar feed URL")."""
        return UnsafeURL(what, self.problem)


def warn_if_private_allowed(allow_private: bool) -> None:
    """Log, once per process, that private targets are allowed."""
    if allow_private and not _warned.is_set():
        _warned.set()
        log.warning(
            "private outbound targets allowed (webhooks, calendar feeds, token endpoints may reach private "
            "addresses): only for local use and tests"
        )


def check_url(url: str, *, allow_private: bool, what: str = THE_URL) -> None:
    """Refuse `url` unless it is http(s), carries no credentials and its host resolves only to public addresses.

    With `allow_private`, private, loopback and link-local addresses pass (metadata addresses never do).
    Raises `UnsafeURL` with a message fit to show the person who entered the URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(what, f"not a valid URL: {error}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeURL(what, "only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(what, "URLs with credentials (user:password@) are not allowed")
    if not parts.hostname:
        raise UnsafeURL(what, "the URL has no host")
    default_port = 443 if parts.scheme.lower() == "https" else 80
    try:
        resolve_safe(parts.hostname, port or default_port, allow_private, what=what)
    except (OSError, UnicodeError) as error:
        raise UnsafeURL(what, f"{parts.hostname} does not resolve ({error})") from None


def resolve_safe(host: str, port: int, allow_private: bool, *, what: str = THE_URL) -> list[str]:
    """The addresses `host` resolves to, in resolver order, if every one of them may be called.

    All addresses are checked, not just the first: a name may mix a public and a private address.
    Raises `UnsafeURL` when one is refused, `OSError` (socket.gaierror) when the name does not resolve.
    """
    warn_if_private_allowed(allow_private)
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        reason = refusal(ipaddress.ip_address(text), allow_private=allow_private)
        if reason is not None:
            shown = host if host == text else f"{host} ({text})"
            raise UnsafeURL(what, f"{shown} is {reason}; {PUBLIC_ONLY}")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise UnsafeURL(what, f"{host} does not resolve to any address")
    return addresses


def check_address(host: str, allow_private: bool, *, what: str = THE_URL) -> None:
    """Raise `UnsafeURL` when `host` is an IP address that may not be called; a name passes (its
    addresses are checked when it is resolved)."""
    reason = _literal_refusal(host.strip("[]"), allow_private)
    if reason is not None:
        raise UnsafeURL(what, f"{host} is {reason}; {PUBLIC_ONLY}")


@functools.lru_cache(maxsize=4096)
def _literal_refusal(host: str, allow_private: bool) -> str | None:
    # Cached: every request to an address-named endpoint asks, and the answer never changes.
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return refusal(address, allow_private=allow_private)


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why `address` may not be called (a phrase such as "a loopback address"), or None when it may."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded, allow_private=allow_private)
    if allow_private:
        return None
    return _non_public(address)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _non_public(address: IPAddress) -> str | None:
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in CARRIER_GRADE_NAT, "a carrier-grade NAT address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


# --- httpx: the checks at connect time ---------------------------------------------------------------

POOL_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30.0)


class CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses unsafe addresses, and connects only to the addresses it checked.

    TLS still verifies the certificate against the URL's host name: httpcore passes it as the SNI name.
    """

    def __init__(self, *, allow_private: bool, what: str = THE_URL) -> None:
        self.allow_private = allow_private
        self.what = what

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve_safe(host, port, self.allow_private, what=self.what)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        last: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                last = error
        assert last is not None  # resolve_safe returns at least one address
        raise last


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport with `CheckedBackend` underneath (httpx offers no public way to pass a backend).

    A refused address raises `UnsafeURL` (not an httpx error) from the request: nothing was sent.
    """

    def __init__(self, *, allow_private: bool, what: str = THE_URL, limits: httpx.Limits = POOL_LIMITS) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(allow_private=allow_private, what=what),
        )


def checked_client(
    *, allow_private: bool, what: str, timeout: float, limits: httpx.Limits = POOL_LIMITS
) -> httpx.Client:
    """An httpx client for URLs from input: checked at connect time, no redirects followed, no proxies
    or certificates taken from the environment. Share one per purpose and process (it pools)."""
    warn_if_private_allowed(allow_private)
    return httpx.Client(
        transport=CheckedTransport(allow_private=allow_private, what=what, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
