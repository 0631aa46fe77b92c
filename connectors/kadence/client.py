"""HTTP to the Kadence public API: bearer tokens, retries, throttling, and JSON-LD/Hydra collections.

The API document lists no rate limits or error bodies; Kadence runs on API Platform, which throttles
with 429 and `Retry-After` (seconds) and answers errors as Hydra documents (`hydra:description`).
Throttling, 5xx and network errors are retried as every connector does (connectors/http.py); what
happened becomes notes.

Collections are read whole (`collection`): `page`/`itemsPerPage` until `hydra:totalItems` is reached,
or `hydra:view`'s `hydra:next` when the server sends one (the document shows no `hydra:view`; API
Platform adds it when it pages). Page-number paging shifts when a record is added or removed
mid-read, and a shifted listing would make the worker drop whatever fell between two pages, so a
listing whose total changed, that repeats a record or falls short of its total is read again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

import httpx

from connectors.http import Notes, Retrying
from connectors.records import ConnectorError

EU_API_URL = "https://api.onkadence.co"
US_API_URL = "https://api.us.onkadence.co"
MAX_PAGE = 500  # the document's itemsPerPage maximum
LISTING_ATTEMPTS = 3
JsonObject = dict[str, Any]


class TokenSource(Protocol):
    """What hands out bearer tokens (KadenceAuth; a stub in tests)."""

    def token(self) -> str: ...

    def forget(self, token: str) -> None: ...


class KadenceClient:
    """A small synchronous client (httpx); `sleep` is injectable so tests do not wait."""

    def __init__(
        self,
        auth: TokenSource,
        *,
        api_url: str = EU_API_URL,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        max_wait: float = 120.0,
        backoff: float = 1.0,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._auth = auth
        self._http = http or httpx.Client(timeout=timeout)
        self.notes = Notes("Kadence")
        self._retrying = Retrying(
            self.notes, sleep=sleep, max_attempts=max_attempts, max_wait=max_wait, backoff=backoff
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def get_json(self, path_or_iri: str, params: Mapping[str, str | int] | None = None) -> JsonObject:
        """GET a JSON-LD object; IRIs the API hands out (`/v1/public/…`, `hydra:next`) are resolved against it."""
        url = str(httpx.URL(self.api_url).join(path_or_iri))
        response = self._request(url, params)
        try:
            body = response.json()
        except ValueError:
            raise ConnectorError(f"Kadence answered GET {_path(url)} with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise ConnectorError(f"Kadence answered GET {_path(url)} with JSON that is not an object")
        return body

    def collection(self, path: str, params: Mapping[str, str | int], *, what: str, page_size: int) -> list[JsonObject]:
        """Every member of a Hydra collection, in order; a listing that shifted while read is read again."""
        for _ in range(LISTING_ATTEMPTS):
            members = self._listing(path, params, what, min(max(page_size, 1), MAX_PAGE))
            if members is not None:
                return members
            self.notes.extra.append(f"{what} changed while being read; read again")
        raise ConnectorError(f"Kadence {what} kept changing while being read; try again later", retry_after=60.0)

    def _listing(self, path: str, params: Mapping[str, str | int], what: str, size: int) -> list[JsonObject] | None:
        """The members, or None when the listing shifted under us (its total changed, a record repeated)."""
        members: list[JsonObject] = []
        seen: set[str] = set()
        total: int | None = None
        page = 1
        target: str = path
        query: Mapping[str, str | int] | None = {**params, "page": page, "itemsPerPage": size}
        while True:
            body = self.get_json(target, query)
            items, count = _envelope(body, f"{what} (page {page})")
            if total is None:
                total = count
            elif count != total:
                return None
            for item in items:
                key = item.get("@id")
                if isinstance(key, str):
                    if key in seen:
                        return None
                    seen.add(key)
            members.extend(items)
            has_view, following = _next_link(body, f"{what} (page {page})")
            if not has_view:  # no hydra:view: page by number until the total is reached
                if not items or page * size >= total:
                    break
                page += 1
                query = {**params, "page": page, "itemsPerPage": size}
            elif following is None:  # hydra:view without hydra:next: the last page
                break
            else:
                page += 1
                target, query = following, None
            if page > total // size + 2:  # a server that never stops handing out pages
                raise ConnectorError(f"Kadence kept paging {what} past its {total} items")
        return members if len(members) == total else None

    def _request(self, url: str, params: Mapping[str, str | int] | None) -> httpx.Response:
        refreshed = False
        while True:
            token = self._auth.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/ld+json"}
            response = self._retrying.send(
                partial(self._http.get, url, params=params, headers=headers), f"GET {_path(url)}"
            )
            if response.status_code < 400:
                return response
            if response.status_code == 401 and not refreshed:
                # A token refused before its time (revoked, clocks apart): one fresh token, once.
                self._auth.forget(token)
                refreshed = True
                continue
            raise _refusal(url, response)


def _envelope(body: JsonObject, what: str) -> tuple[list[JsonObject], int]:
    """`hydra:member` and `hydra:totalItems`, checked: anything else is a malformed answer."""
    items, total = body.get("hydra:member"), body.get("hydra:totalItems")
    if not isinstance(items, list):
        raise ConnectorError(f"Kadence answered {what} without a hydra:member list")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ConnectorError(f"Kadence answered {what} with hydra:totalItems={total!r}, not a count")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConnectorError(f"Kadence answered {what} with member {index} that is not an object")
    return items, total


def _next_link(body: JsonObject, what: str) -> tuple[bool, str | None]:
    """(whether there is a `hydra:view`, its `hydra:next` IRI or None on the last page)."""
    view = body.get("hydra:view")
    if view is None:
        return False, None
    following = view.get("hydra:next") if isinstance(view, dict) else 0
    if following is None or isinstance(following, str):
        return True, following
    raise ConnectorError(f"Kadence answered {what} with a hydra:view whose hydra:next is not an IRI")


def _refusal(url: str, response: httpx.Response) -> ConnectorError:
    status = response.status_code
    detail = _error_text(response)
    where = f"GET {_path(url)}"
    if status in (401, 403):
        return ConnectorError(
            f"Kadence refused {where} ({status}: {detail}); the API client needs public API access "
            "in Kadence's developer settings",
            action_required=True,
        )
    return ConnectorError(f"Kadence refused {where}: {status}: {detail}")


def _error_text(response: httpx.Response) -> str:
    """The Hydra error's description (`hydra:description`, else `detail`/`hydra:title`), or the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        for key in ("hydra:description", "detail", "hydra:title", "message"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return response.reason_phrase


def _path(url: str) -> str:
    return httpx.URL(url).path
