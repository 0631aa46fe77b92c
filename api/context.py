"""What the API needs from the composition root, handed to `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from api.ratelimit import Counter


@dataclass(frozen=True)
class ApiContext:
    session_factory: sessionmaker[Session]
    counter: Counter
    public_base_url: str
    broker_ping: Callable[[], bool]
    rate_limit_per_day: int = 1000
    max_body_bytes: int = 64 * 1024
