"""Every setting in one place, read from `DESKBRIDGE_*` environment variables (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """deskbridge's configuration. The defaults are the embedded mode: SQLite, in-process broker."""

    model_config = SettingsConfigDict(env_prefix="DESKBRIDGE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/deskbridge.db",
        description="SQLAlchemy URL of the store: a SQLite file, or postgresql://user@host/db.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis for the Dramatiq broker and rate limits; unset means in-process."
    )
    public_base_url: str | None = Field(
        default=None,
        description="Where people and providers reach the API (links, Location headers, push channels); "
        "unset: http://HOST:PORT of `deskbridge serve`.",
    )
    host: str = Field(default="127.0.0.1", description="Address `deskbridge serve` listens on.")
    port: int = Field(default=8000, description="Port `deskbridge serve` listens on.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet keys for secrets at rest, comma-separated, newest first (older ones still decrypt). "
        "Required outside the embedded mode; `deskbridge key new` prints one.",
    )
    secret_key_file: Path = Field(
        default=Path("var/secret.key"),
        description="Where the embedded mode keeps the key it made when secret_key is unset.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for invitation emails; unset writes them to mail_dir."
    )
    smtp_port: int = Field(default=587, description="SMTP port.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if the server wants one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS.")
    mail_from: str = Field(default="deskbridge <no-reply@deskbridge.local>", description="Sender of emails.")
    mail_dir: Path = Field(default=Path("var/mail"), description="Folder for emails when no SMTP server is set.")
    rate_limit_per_day: int = Field(default=1000, description="API requests per member per day (0 = no limit).")
    default_timezone: str = Field(default="UTC", description="IANA time zone given to new organisations.")
    max_body_bytes: int = Field(default=64 * 1024, description="Largest request body the API accepts.")
    max_import_bytes: int = Field(
        default=10 * 1024 * 1024, description="Largest body of a SCIM request or CSV import (a whole directory)."
    )
    worker_threads: int = Field(default=4, description="Worker threads of the in-process broker (embedded mode).")
    log_level: str = Field(default="INFO", description="Logging level.")
    allow_private_webhooks: bool | None = Field(
        default=None,
        description="Let webhooks and feeds reach private, loopback and link-local addresses; "
        "unset: allowed in the embedded mode only.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token `GET /metrics` asks for; unset: /metrics is open."
    )
    webhook_retry_scale: float = Field(
        default=1.0, gt=0, description="Multiplies the webhook retry delays (tests compress them with e.g. 0.001)."
    )
    directory_sync_minutes: float = Field(
        default=15, gt=0, description="How often Microsoft and Google directories are read (push makes it sooner)."
    )
    calendar_sync_minutes: float = Field(
        default=15, gt=0, description="How often calendars and ICS feeds are read (push makes it sooner)."
    )
    microsoft_authority: str = Field(
        default="https://login.microsoftonline.com", description="Microsoft identity platform (sovereign clouds)."
    )
    graph_url: str = Field(default="https://graph.microsoft.com/v1.0", description="Microsoft Graph base URL.")
    google_api_url: str = Field(default="https://admin.googleapis.com/", description="Google Admin SDK base URL.")
    ca_bundle: str | None = Field(
        default=None, description="A CA certificate file to trust for directory APIs (behind a TLS-inspecting proxy)."
    )

    @property
    def embedded(self) -> bool:
        """The embedded mode: a SQLite store and no Redis, everything in one process on one machine."""
        return self.redis_url is None and self.database_url.startswith("sqlite")

    @property
    def private_targets_allowed(self) -> bool:
        """Whether webhooks and feeds may reach private addresses: the setting when given, else the
        embedded mode (so a CLI command beside `make run` behaves as the server does)."""
        return self.embedded if self.allow_private_webhooks is None else self.allow_private_webhooks

    @property
    def base_url(self) -> str:
        """`public_base_url`, or where `deskbridge serve` listens (HOST:PORT) when it is unset."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = _LINK_HOSTS.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def require_secret_key(self) -> None:
        """Refuse to go on without DESKBRIDGE_SECRET_KEY outside the embedded mode: every process of a
        deployment must share one key, or none can read what another encrypted."""
        if self.secret_key is None and not self.embedded:
            raise MissingSecretKey(
                "DESKBRIDGE_SECRET_KEY is not set. Outside the embedded mode (PostgreSQL or Redis configured) "
                "every process (API, workers, scheduler, CLI) must be given the same key: make one with "
                "`deskbridge key new` and set it in the environment of each."
            )


class MissingSecretKey(SystemExit):
    """A process outside the embedded mode was started without DESKBRIDGE_SECRET_KEY.

    A SystemExit: wherever it is raised (uvicorn or dramatiq importing their module, the scheduler,
    the CLI) the process ends with status 1 and this message alone on stderr, not a traceback.
    """


# Addresses that listen everywhere: links use the loopback address instead.
_LINK_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - compared, not bound


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
