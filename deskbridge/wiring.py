"""The composition root: builds the store, broker, worker runtime and API from the settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import dramatiq
import redis
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.context import ApiContext
from api.ratelimit import Counter, MemoryCounter, RedisCounter
from deskbridge.settings import Settings
from store.db import make_engine, make_session_factory
from worker import broker as brokers
from worker import relay, runtime
from worker.mailers import Mailer
from worker.mailers.folder import FolderMailer
from worker.mailers.smtp import SMTPMailer


@dataclass(frozen=True)
class Components:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    broker: dramatiq.Broker


def build(settings: Settings) -> Components:
    """Engine, sessions whose commits feed the relay, the broker, and the worker runtime."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine, listeners=[relay.on_commit])
    broker = brokers.make_broker(settings.redis_url)
    runtime.configure(
        runtime.Runtime(
            session_factory=session_factory,
            mailer=make_mailer(settings),
            public_base_url=settings.public_base_url,
            mail_from=settings.mail_from,
        )
    )
    import worker.actors  # noqa: F401  - declares the actors on the broker just set

    return Components(settings, engine, session_factory, broker)


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SMTPMailer(
            settings.smtp_host, settings.smtp_port, settings.smtp_username, password, settings.smtp_starttls
        )
    return FolderMailer(settings.mail_dir)


def make_counter(settings: Settings) -> Counter:
    if settings.redis_url:
        return RedisCounter(redis.Redis.from_url(settings.redis_url))
    return MemoryCounter()


def make_app(components: Components) -> FastAPI:
    settings = components.settings
    return create_app(
        ApiContext(
            session_factory=components.session_factory,
            counter=make_counter(settings),
            public_base_url=settings.public_base_url,
            broker_ping=partial(brokers.ping, components.broker),
            rate_limit_per_day=settings.rate_limit_per_day,
            max_body_bytes=settings.max_body_bytes,
        )
    )
