"""Server-side request forgery guard for webhook URLs.

A webhook URL is chosen by a customer, so the worker must never be made to POST into our own
network. `check_url` vets a URL when an endpoint is created or changed; `resolve_safe` vets the
addresses a host resolves to at the moment of connecting (see `worker.webhooks.sender`: aiohttp's
resolver for the POSTs, httpx's network backend for the feeds), so a name that resolved to a public
address at creation and to 127.0.0.1 later (DNS rebinding) is still refused; `check_address` vets a
host that is an IP address, which aiohttp connects to without asking its resolver.

Cloud metadata addresses are refused even when private targets are allowed: nothing legitimate
posts webhooks to them, and they hand out credentials.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading
from urllib.parse import urlsplit

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

_warned = threading.Event()


class UnsafeURL(ValueError):
    """A webhook URL (or the address it resolves to) that deskbridge refuses to call."""


def warn_if_private_allowed(allow_private: bool) -> None:
    """Log, once per process, that private webhook targets are allowed."""
    if allow_private and not _warned.is_set():
        _warned.set()
        log.warning("private webhook targets allowed (DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS): only for local use and tests")


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse `url` unless it is http(s), carries no credentials and its host resolves only to public addresses.

    With `allow_private`, private, loopback and link-local addresses pass (metadata addresses never do).
    Raises `UnsafeURL` with a message fit to show the person who entered the URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(f"not a valid URL: {error}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeURL("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("URLs with credentials (user:password@) are not allowed")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    default_port = 443 if parts.scheme.lower() == "https" else 80
    try:
        resolve_safe(parts.hostname, port or default_port, allow_private)
    except (OSError, UnicodeError) as error:
        raise UnsafeURL(f"{parts.hostname} does not resolve ({error})") from None


def resolve_safe(host: str, port: int, allow_private: bool) -> list[str]:
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
            raise UnsafeURL(f"{shown} is {reason}; webhooks may only call public addresses")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise UnsafeURL(f"{host} does not resolve to any address")
    return addresses


def check_address(host: str, allow_private: bool) -> None:
    """Raise `UnsafeURL` when `host` is an IP address that may not be called; a name passes (its
    addresses are checked when it is resolved)."""
    reason = _literal_refusal(host.strip("[]"), allow_private)
    if reason is not None:
        raise UnsafeURL(f"{host} is {reason}; webhooks may only call public addresses")


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
