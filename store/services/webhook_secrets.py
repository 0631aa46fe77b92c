"""Webhook signing secrets: made, kept encrypted, revealed, rotated with a grace period for the old one."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy.orm import Session

from store import outbox
from store.models import SignatureScheme, WebhookEndpoint
from store.secret_box import SecretBox

SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker, not a secret
PRIVATE_KEY_PREFIX = "whsk_"  # ed25519 (Standard Webhooks v1a): the key deskbridge signs with
PUBLIC_KEY_PREFIX = "whpk_"  # and the one receivers verify with
ROTATION_GRACE = timedelta(hours=24)


def generate_secret() -> str:
    """A new signing secret: `whsec_` and the standard base64 of 32 random bytes (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def generate_key_pair() -> tuple[str, str]:
    """A new ed25519 key pair, (`whsk_` private, `whpk_` public): base64 of the raw 32-byte keys."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode(), PUBLIC_KEY_PREFIX + base64.b64encode(public).decode()


def use_ed25519(endpoint: WebhookEndpoint, box: SecretBox) -> None:
    """Give the endpoint an ed25519 key pair unless it has one (the private key kept encrypted)."""
    if endpoint.public_key is None or endpoint.private_key_encrypted is None:
        private, public = generate_key_pair()
        endpoint.private_key_encrypted, endpoint.public_key = box.encrypt(private), public


class SigningKeys(Protocol):
    """What signing needs of an endpoint: a WebhookEndpoint or a DeliveryJob."""

    @property
    def signature(self) -> SignatureScheme: ...

    @property
    def private_key_encrypted(self) -> str | None: ...

    @property
    def secret_encrypted(self) -> str: ...

    @property
    def previous_secret_encrypted(self) -> str | None: ...

    @property
    def previous_secret_expires_at(self) -> datetime | None: ...


def signing_secrets(endpoint: SigningKeys, box: SecretBox, now: datetime) -> list[str]:
    """The secrets to sign with at `now`: the current one, and the previous one during its grace period;
    for an ed25519 endpoint, its `whsk_` private key alone."""
    if endpoint.signature is SignatureScheme.ED25519 and endpoint.private_key_encrypted is not None:
        return [box.decrypt(endpoint.private_key_encrypted)]
    current = [box.decrypt(endpoint.secret_encrypted)]
    previous, expires_at = endpoint.previous_secret_encrypted, endpoint.previous_secret_expires_at
    if previous is not None and expires_at is not None and expires_at > now:
        return [*current, box.decrypt(previous)]
    return current


def reveal_secret(endpoint: WebhookEndpoint, box: SecretBox) -> str:
    """The endpoint's current signing secret, in clear."""
    return box.decrypt(endpoint.secret_encrypted)


def rotate_secret(session: Session, endpoint: WebhookEndpoint, box: SecretBox, now: datetime) -> str:
    """Give the endpoint a new secret and return it; the current one keeps signing for ROTATION_GRACE.

    A secret still in its grace period from an earlier rotation stops at once. Records
    `endpoint.secret_rotated` (which names no secret).
    """
    secret = generate_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret_encrypted = box.encrypt(secret)
    outbox.record(
        session,
        endpoint.organisation_id,
        "endpoint.secret_rotated",
        {"endpoint_id": endpoint.id, "previous_valid_until": endpoint.previous_secret_expires_at},
    )
    return secret
