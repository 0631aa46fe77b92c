"""What the API needs from the composition root, handed to `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session, sessionmaker

from api.ratelimit import Counter
from store.secret_box import SecretBox


@dataclass(frozen=True)
class ApiContext:
    session_factory: sessionmaker[Session]
    counter: Counter
    public_base_url: str
    broker_ping: Callable[[], bool]
    rate_limit_per_day: int = 1000
    max_body_bytes: int = 64 * 1024
    max_import_bytes: int = 10 * 1024 * 1024  # SCIM and CSV imports (see api.middleware)
    secret_box: SecretBox | None = None
    # Webhooks: the SSRF rule, the client test sends go through, and how a resumed or replayed backlog
    # is queued (in event order).
    allow_private_webhooks: bool = False
    webhook_client: httpx.Client | None = None
    enqueue_backlog: Callable[[list[int]], None] = lambda _ids: None
    # Directory push: queue a sync asked for (see worker.directory.jobs), and open or renew a
    # connection's channels (the flag: close and open them again).
    enqueue_sync: Callable[[int], None] = lambda _id: None
    enqueue_channels: Callable[[int, bool], None] = lambda _id, _recreate: None
    # Close a connection's channels at the provider, before its credentials are deleted with it.
    close_channels: Callable[[int], None] = lambda _id: None
    # Calendars: a connection that reads calendars was made or changed (or asked to sync): the
    # calendar worker brings its calendars in line and syncs them (see worker.calendar.jobs). The
    # change owes it as a follow-up already (store.services.follow_ups): this only does it sooner.
    calendars_changed: Callable[[int], None] = lambda _id: None
    # The organisation's calendar settings named changed: stored events are brought in line (see
    # worker.calendar.reevaluate); owed as a follow-up by the change too.
    calendar_settings_changed: Callable[[int, list[str]], None] = lambda _id, _changed: None
    # The console's sign-in links: queue the email of one just committed (see worker.sign_in_links).
    send_sign_in_link: Callable[[int], None] = lambda _id: None
    # The bearer token GET /metrics asks for; None: /metrics is open.
    metrics_token: str | None = None

    def box(self) -> SecretBox:
        """The key ring secrets at rest are kept with (connections' credentials, webhook secrets): the
        composition root always hands one over, so its absence is a wiring error, not a 4xx."""
        if self.secret_box is None:
            raise RuntimeError("ApiContext.secret_box is not set (see deskbridge.wiring)")
        return self.secret_box
