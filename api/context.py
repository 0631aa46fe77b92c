"""What the API needs from the composition root, handed to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from api.jobs import Jobs
from api.ratelimit import Counter
from connectors.kind import Endpoints
from store.secret_box import SecretBox


@dataclass(frozen=True)
class ApiContext:
    session_factory: sessionmaker[Session]
    counter: Counter
    public_base_url: str
    # The one way to the worker: every job a request asks for after its commit, a test send, whether
    # the queue answers (see api/jobs.py; the worker's implementation is wired in deskbridge.wiring).
    jobs: Jobs
    rate_limit_per_day: int = 1000
    max_body_bytes: int = 64 * 1024
    max_import_bytes: int = 10 * 1024 * 1024  # SCIM and CSV imports (see api.middleware)
    secret_box: SecretBox | None = None
    # Webhooks: whether private targets pass the SSRF rule (the deployment's setting).
    allow_private_webhooks: bool = False
    # Where directories live, for reading one person at once (POST /v1/connections/{id}/sync with an address):
    # the worker's own endpoints (deskbridge.wiring).
    directory: Endpoints = field(default_factory=Endpoints)
    # The bearer token GET /metrics asks for; None: /metrics is open.
    metrics_token: str | None = None

    def box(self) -> SecretBox:
        """The key ring secrets at rest are kept with (connections' credentials, webhook secrets): the
        composition root always hands one over, so its absence is a wiring error, not a 4xx."""
        if self.secret_box is None:
            raise RuntimeError("ApiContext.secret_box is not set (see deskbridge.wiring)")
        return self.secret_box
