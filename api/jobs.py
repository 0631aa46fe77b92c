"""The API's one port to the worker: the work a request asks for beyond its own transaction.

The API imports nothing of `worker/` (docs/architecture.md, tests/test_layers.py): it asks for work
through `Jobs`, held by its context (`ApiContext.jobs`), and the composition root hands it the
worker's implementation (`worker.api_jobs.QueuedJobs`, wired in deskbridge/wiring.py). The methods
are named for the work asked, not for the queue or the actor that does it. Every one is called after
the request's commit and never raises for a queue that is down: what a request asks for is owed
already (a follow-up row, `sync_requested_at`, a kept delivery, a pending delivery) or caught up by
the scheduler, and the worker's side says how for each.

`StubJobs`, beside the port, records what was asked and does nothing, for tests whose subject is the
API (the way Dramatiq's stub broker sits beside its real one); tests assert on what it recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sync.directory.plans import Source


class Answer(Protocol):
    """What a webhook receiver answered a test send (the worker's `sender.Outcome`)."""

    @property
    def success(self) -> bool: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def response_excerpt(self) -> str: ...
    @property
    def error(self) -> str | None: ...


class Jobs(Protocol):
    """The work the API asks of the worker."""

    def ready(self) -> bool:
        """Whether the queue answers (`/readyz`)."""

    def waiting(self) -> Mapping[str, int]:
        """Messages waiting by queue (a queue's delayed ones under `name.DQ`), for `/metrics`."""

    def deliver_backlog(self, delivery_ids: Sequence[int]) -> None:
        """Attempt a resumed or replayed backlog of one endpoint, one delivery after the other."""

    def sync_directory(self, connection_id: int) -> None:
        """Read a connection's directory (asked for with `connections.request_sync` in the commit)."""

    def renew_directory_channels(self, connection_id: int, recreate: bool) -> None:
        """Open or renew a connection's push channels (`recreate`: close and open them again)."""

    def close_channels(self, connection_id: int) -> None:
        """Close a connection's push channels at the provider now, before its credentials are deleted."""

    def follow_calendars(self, connection_id: int) -> None:
        """Bring a connection's calendars in line after it was made or changed (or asked to sync)."""

    def sync_calendars(self, connection_id: int, calendar_ids: Sequence[int]) -> None:
        """Read these calendars of one connection (asked for with `calendars.request_sync` in the commit)."""

    def renew_calendar_channel(self, calendar_id: int, recreate: bool) -> None:
        """Open or renew a calendar's push channel (`recreate`: close and open it again)."""

    def reevaluate_calendars(self, organisation_id: int, changed: Sequence[str]) -> None:
        """Bring stored calendar events in line with the organisation's calendar settings named."""

    def apply_peer_deliveries(self, connection_id: int) -> None:
        """Apply a peer connection's kept webhook deliveries (one waiting job per connection)."""

    def email_sign_in_link(self, link_id: int) -> None:
        """Make and email the console sign-in link just committed."""

    def send_test_event(self, url: str, payload_format: str, secrets: Sequence[str], endpoint_id: int) -> Answer:
        """POST a signed `webhook.test` event to `url` now, once, and return what the receiver answered."""

    def read_directory(self, connection_id: int) -> Source:
        """Read a connection's directory now, whole, for a sync plan (a pushed one's: nothing to read).
        A directory that refuses is a `store.errors.Conflict` with the reason an admin can act on."""


Asked = tuple[str, tuple[object, ...]]  # the method and its arguments


@dataclass(frozen=True)
class Answered:
    """A receiver's answer as `StubJobs.send_test_event` gives it."""

    success: bool = True
    status_code: int | None = 204
    duration_ms: int = 0
    response_excerpt: str = ""
    error: str | None = None


@dataclass
class StubJobs:
    """`Jobs` that records what was asked, in order, and does none of it. `answers` is what `ready`
    says; `answer` what a test send returns."""

    answers: bool = True
    answer: Answered = field(default_factory=Answered)
    asked: list[Asked] = field(default_factory=list)

    def of(self, work: str) -> list[tuple[object, ...]]:
        """The arguments of every ask of `work` (a method's name), in order."""
        known = {name for name in dir(Jobs) if not name.startswith("_")}
        if work not in known:
            raise ValueError(f"{work!r} is no work of the Jobs port")
        return [arguments for name, arguments in self.asked if name == work]

    def ready(self) -> bool:
        """What `answers` says."""
        return self.answers

    def waiting(self) -> Mapping[str, int]:
        """Nothing waits: nothing is queued."""
        return {}

    def deliver_backlog(self, delivery_ids: Sequence[int]) -> None:
        """Recorded."""
        self.asked.append(("deliver_backlog", (list(delivery_ids),)))

    def sync_directory(self, connection_id: int) -> None:
        """Recorded."""
        self.asked.append(("sync_directory", (connection_id,)))

    def read_directory(self, connection_id: int) -> Source:
        """Recorded; reads nothing (as a pushed directory's plan: everyone decided again)."""
        self.asked.append(("read_directory", (connection_id,)))
        return Source()

    def renew_directory_channels(self, connection_id: int, recreate: bool) -> None:
        """Recorded."""
        self.asked.append(("renew_directory_channels", (connection_id, recreate)))

    def close_channels(self, connection_id: int) -> None:
        """Recorded."""
        self.asked.append(("close_channels", (connection_id,)))

    def follow_calendars(self, connection_id: int) -> None:
        """Recorded."""
        self.asked.append(("follow_calendars", (connection_id,)))

    def sync_calendars(self, connection_id: int, calendar_ids: Sequence[int]) -> None:
        """Recorded."""
        self.asked.append(("sync_calendars", (connection_id, list(calendar_ids))))

    def renew_calendar_channel(self, calendar_id: int, recreate: bool) -> None:
        """Recorded."""
        self.asked.append(("renew_calendar_channel", (calendar_id, recreate)))

    def reevaluate_calendars(self, organisation_id: int, changed: Sequence[str]) -> None:
        """Recorded."""
        self.asked.append(("reevaluate_calendars", (organisation_id, list(changed))))

    def apply_peer_deliveries(self, connection_id: int) -> None:
        """Recorded."""
        self.asked.append(("apply_peer_deliveries", (connection_id,)))

    def email_sign_in_link(self, link_id: int) -> None:
        """Recorded."""
        self.asked.append(("email_sign_in_link", (link_id,)))

    def send_test_event(self, url: str, payload_format: str, secrets: Sequence[str], endpoint_id: int) -> Answer:
        """Recorded (never the secrets); returns `answer`."""
        self.asked.append(("send_test_event", (url, payload_format, endpoint_id)))
        return self.answer
