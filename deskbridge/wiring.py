"""The composition root: builds the store, broker, worker runtime and API from the settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dramatiq
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api import secret_urls
from api.app import create_app
from api.context import ApiContext
from api.ratelimit import Counter, MemoryCounter, RedisCounter
from deskbridge.settings import Settings
from store.db import make_engine, make_session_factory
from store.secret_box import SecretBox
from sync.directory.readers import DirectoryEndpoints
from worker import actors, after_commit, runtime
from worker import broker as brokers
from worker.api_jobs import QueuedJobs
from worker.calendar import outbound
from worker.mailers import Mailer
from worker.mailers.folder import FolderMailer
from worker.mailers.smtp import SMTPMailer
from worker.metrics import enable_worker_metrics
from worker.webhooks.limits import configure_limits
from worker.webhooks.schedule import DEFAULT_DELAYS, scaled
from worker.webhooks.sender import make_client


@dataclass(frozen=True)
class Components:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    broker: dramatiq.Broker


def build(settings: Settings) -> Components:
    """Engine, sessions whose commits feed the relay, the broker with every actor bound to it, and the
    worker runtime."""
    settings.require_secret_key()
    configure_logging(settings.log_level)
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine, listeners=[after_commit.on_commit, outbound.on_commit])
    broker = brokers.make_broker(settings.redis_url)
    enable_worker_metrics(broker)
    queue = actors.bind(broker)
    # In-process, the worker threads are few: one endpoint may hold at most half of them.
    configure_limits(
        settings.redis_url, per_endpoint=10 if settings.redis_url else max(1, settings.worker_threads // 2)
    )
    runtime.configure(
        runtime.Runtime(
            session_factory=session_factory,
            mailer=make_mailer(settings),
            public_base_url=settings.base_url,
            mail_from=settings.mail_from,
            secret_box=make_secret_box(settings),
            webhook_client=make_client(allow_private=settings.private_targets_allowed),
            queue=queue,
            retry_delays=scaled(DEFAULT_DELAYS, settings.webhook_retry_scale),
            directory=DirectoryEndpoints(
                microsoft_authority=settings.microsoft_authority,
                graph_url=settings.graph_url,
                google_api_url=settings.google_api_url,
                ca_bundle=settings.ca_bundle,
                allow_private=settings.private_targets_allowed,
            ),
            directory_sync_seconds=settings.directory_sync_minutes * 60,
            calendar_sync_seconds=settings.calendar_sync_minutes * 60,
        )
    )
    return Components(settings, engine, session_factory, broker)


def make_secret_box(settings: Settings) -> SecretBox:
    """The key ring for secrets at rest: DESKBRIDGE_SECRET_KEY (comma-separated, newest first), or in
    the embedded mode a key made once and kept in `secret_key_file` (MissingSecretKey outside it)."""
    settings.require_secret_key()
    if settings.secret_key is not None:
        return SecretBox([key.strip() for key in settings.secret_key.get_secret_value().split(",") if key.strip()])
    path = settings.secret_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SecretBox.generate_key())
        path.chmod(0o600)
        logging.getLogger(__name__).warning(
            "DESKBRIDGE_SECRET_KEY is not set: made a key in %s. Set the variable in production.", path
        )
    return SecretBox([path.read_text().strip()])


# Loggers whose INFO lines are routine (a line per scheduler tick): shown from WARNING on unless the
# log level is DEBUG, so the default log has one line per meaningful action.
CHATTY_LOGGERS = ("apscheduler.scheduler", "apscheduler.executors.default")


def configure_logging(level: str) -> None:
    """The process's log format and level; the chatty loggers quiet below DEBUG; secrets in URLs masked in
    the access log."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    secret_urls.install()
    quiet = logging.getLevelName(level.upper()) != logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SMTPMailer(
            settings.smtp_host, settings.smtp_port, settings.smtp_username, password, settings.smtp_starttls
        )
    return FolderMailer(settings.mail_dir)


def make_counter(settings: Settings) -> Counter:
    if settings.redis_url:
        return RedisCounter.from_url(settings.redis_url)
    return MemoryCounter()


def make_app(components: Components) -> FastAPI:
    settings = components.settings
    worker_runtime = runtime.current()
    return create_app(
        ApiContext(
            session_factory=components.session_factory,
            counter=make_counter(settings),
            public_base_url=settings.base_url,
            jobs=QueuedJobs(worker_runtime),
            rate_limit_per_day=settings.rate_limit_per_day,
            max_body_bytes=settings.max_body_bytes,
            max_import_bytes=settings.max_import_bytes,
            secret_box=worker_runtime.secret_box,
            allow_private_webhooks=settings.private_targets_allowed,
            directory=worker_runtime.directory,
            metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        )
    )
