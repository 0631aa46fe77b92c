"""Standard Webhooks signers: `v1` (HMAC-SHA256 with a `whsec_` secret, by the standardwebhooks library)
and `v1a` (ed25519 with a `whsk_` private key; the library signs only v1, so this follows the spec:
the signature of `{webhook-id}.{webhook-timestamp}.{body}`, base64, after `v1a,`).

The secret's prefix says which scheme it is for, as the specification intends.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from math import floor
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks.webhooks import Webhook

from store.services.webhook_secrets import PRIVATE_KEY_PREFIX


class Signer(Protocol):
    """Signs one request: the `webhook-signature` entry for it (`v1,…` or `v1a,…`)."""

    def sign(self, msg_id: str, timestamp: datetime, data: str) -> str: ...


class Ed25519Signer:
    """A `v1a` signer with an endpoint's `whsk_` private key (the raw 32-byte ed25519 seed, base64)."""

    def __init__(self, private_key: str) -> None:
        if not private_key.startswith(PRIVATE_KEY_PREFIX):
            raise ValueError("an ed25519 signing key starts with whsk_")
        self._key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key[len(PRIVATE_KEY_PREFIX) :]))

    def sign(self, msg_id: str, timestamp: datetime, data: str) -> str:
        """`v1a,` and the base64 ed25519 signature of `{msg_id}.{unix seconds}.{data}`."""
        seconds = floor(timestamp.astimezone(UTC).timestamp())
        signature = self._key.sign(f"{msg_id}.{seconds}.{data}".encode())
        return "v1a," + base64.b64encode(signature).decode()


def signer_for(secret: str) -> Signer:
    """The signer a secret is for: `whsk_` signs v1a (ed25519), `whsec_` v1 (HMAC)."""
    if secret.startswith(PRIVATE_KEY_PREFIX):
        return Ed25519Signer(secret)
    return Webhook(secret)
