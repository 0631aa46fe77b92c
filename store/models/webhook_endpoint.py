from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONDocument, Timestamps, enum_column


class PayloadFormat(enum.StrEnum):
    EVENT = "event"  # one event object a request
    ARRAY = "array"  # a JSON array of event objects, as WiggleDesk's webhooks send


class EndpointKind(enum.StrEnum):
    WEBHOOK = "webhook"  # made by an admin under /v1/webhooks
    REST_HOOK = "rest_hook"  # a Zapier-style subscription under /v1/hooks; a 410 deletes it


class SignatureScheme(enum.StrEnum):
    HMAC = "hmac"  # Standard Webhooks v1: HMAC-SHA256 with the whsec_ secret
    ED25519 = "ed25519"  # Standard Webhooks v1a: an ed25519 signature, verified with the whpk_ public key


class WebhookEndpoint(Timestamps, Base):
    """Where an organisation's events are POSTed, which of them, and the secret that signs them.

    The signing secret is kept encrypted (store.secret_box); after a rotation the previous one keeps
    signing until `previous_secret_expires_at`. A disabled endpoint gets no new deliveries; a paused
    one gets them but they wait until it is resumed.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    # Patterns: exact types ("booking.created"), prefixes ("booking.*") or "*"; empty means every event.
    event_types: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    payload_format: Mapped[PayloadFormat] = mapped_column(enum_column(PayloadFormat), default=PayloadFormat.EVENT)
    kind: Mapped[EndpointKind] = mapped_column(enum_column(EndpointKind), default=EndpointKind.WEBHOOK)
    paused: Mapped[bool] = mapped_column(default=False)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    # The first failed attempt since the last success: an endpoint failing for too long is disabled.
    failing_since: Mapped[datetime | None]
    # One request at a time, strictly in event order: a failure holds the later deliveries back.
    ordered: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Requests a second at most, across every worker; None: only the concurrency slots limit them.
    rate_limit_per_second: Mapped[int | None]
    signature: Mapped[SignatureScheme] = mapped_column(
        enum_column(SignatureScheme), default=SignatureScheme.HMAC, server_default="hmac"
    )
    # For ed25519: the public key (whpk_…, shown on the endpoint) and the private key (whsk_…, encrypted).
    public_key: Mapped[str | None] = mapped_column(Text)
    private_key_encrypted: Mapped[str | None] = mapped_column(Text)
