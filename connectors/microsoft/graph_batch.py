"""Several Graph GETs in one HTTP request: JSON batching (`POST /$batch`, up to 20 requests).

Each request of a batch is answered on its own (`responses`, matched by `id`, in any order), with
its own status, headers and body; the batch itself succeeds when Graph could read it. Requests go
with the batch's bearer token, and their URLs are relative to the version's root (`/users/…`), so a
link Graph handed out (a deltaLink) is sent without the root it came with. Only successes are
handed back: a request Graph refused or throttled is left to the caller, who asks it again on its
own, with the usual retries and messages (throttling inside a batch is per request, with its own
`Retry-After`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.microsoft.graph import GraphClient
from connectors.records import ConnectorError

MAX_REQUESTS = 20  # what Graph takes in one batch


def get_many(
    graph: GraphClient, requests: Sequence[tuple[str, Sequence[tuple[str, str]]]], *, permission: str
) -> list[dict[str, Any] | None]:
    """GET each (URL or path, headers) in batches of MAX_REQUESTS; each one's JSON object, or None where
    Graph did not answer it with a 200 (or the URL is not Graph's, or it would be a batch of one), for the
    caller to ask alone."""
    answers: list[dict[str, Any] | None] = [None] * len(requests)
    for start in range(0, len(requests), MAX_REQUESTS):
        chunk = {
            str(number): request
            for number, request in enumerate(requests[start : start + MAX_REQUESTS], start=start)
            if _relative(graph, request[0]) is not None
        }
        if len(chunk) > 1:  # a batch of one request would only wrap it
            answers_by_id = _send(graph, chunk, permission)
            for key, body in answers_by_id.items():
                answers[int(key)] = body
    return answers


def _send(
    graph: GraphClient, chunk: dict[str, tuple[str, Sequence[tuple[str, str]]]], permission: str
) -> dict[str, dict[str, Any]]:
    payload = {
        "requests": [
            {"id": key, "method": "GET", "url": _relative(graph, url), "headers": _headers(headers)}
            for key, (url, headers) in chunk.items()
        ]
    }
    response = graph.request("POST", "$batch", permission=permission, json=payload)
    try:
        body = response.json()
    except ValueError:
        raise ConnectorError("Graph answered a JSON batch with a body that is not JSON") from None
    found: dict[str, dict[str, Any]] = {}
    for item in body.get("responses") or () if isinstance(body, dict) else ():
        if not isinstance(item, dict) or str(item.get("id")) not in chunk:
            continue
        if item.get("status") == 200 and isinstance(item.get("body"), dict):
            found[str(item["id"])] = item["body"]
    return found


def _relative(graph: GraphClient, url: str) -> str | None:
    """`url` relative to the version's root ("/users/…"); None for a URL elsewhere."""
    if not url.startswith(("https://", "http://")):
        return "/" + url.lstrip("/")
    root = graph.base_url.rstrip("/")
    return url[len(root) :] if url.startswith(root + "/") else None


def _headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    # A batch request carries one value per header name: repeated preferences are joined, as
    # RFC 7240 allows (`Prefer: a, b`).
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        joined.setdefault(name, []).append(value)
    return {name: ", ".join(values) for name, values in joined.items()}
