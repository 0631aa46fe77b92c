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
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Where people and providers reach the API (links, webhooks)."
    )
    host: str = Field(default="127.0.0.1", description="Address `deskbridge serve` listens on.")
    port: int = Field(default=8000, description="Port `deskbridge serve` listens on.")
    secret_key: SecretStr | None = Field(
        default=None, description="Key for encrypting connector credentials at rest (Fernet, base64)."
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
    worker_threads: int = Field(default=4, description="Worker threads of the in-process broker (embedded mode).")
    log_level: str = Field(default="INFO", description="Logging level.")
    allow_private_webhooks: bool = Field(
        default=False,
        description="Let webhooks reach private, loopback and link-local addresses (embedded mode, tests).",
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


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
