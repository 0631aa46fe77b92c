"""Symmetric encryption of secrets the store must give back (webhook signing secrets).

Unlike API tokens, a signing secret is needed in clear to sign, so it cannot be hashed: it is kept
encrypted with Fernet keys from the settings. The first key encrypts; every key decrypts, so a new
key can be put first while tokens made with the older ones still open (and `rotate` re-encrypts them).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from store.errors import Invalid


class UndecryptableSecret(Exception):
    """No key of the box opens the token: a key was removed before its tokens were re-encrypted, or
    this process was given another key than the one that encrypted them."""

    @staticmethod
    def reason(what: str) -> str:
        """What an admin reads when `what` (e.g. "the webhook's signing secret") cannot be decrypted:
        the cause and the fix, never the secret."""
        return (
            f"{what} cannot be decrypted: no key in DESKBRIDGE_SECRET_KEY opens it (the key was changed, "
            "or this process has another one). Give every process the key it was made with, newest key "
            "first and older ones after it."
        )


class SecretBox:
    """Encrypts and decrypts short secrets with a list of Fernet keys (the first one encrypts)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise Invalid("the secret box needs a list of keys, not one string", field="keys")
        cleaned = [key.strip() for key in keys if key.strip()]
        if not cleaned:
            raise Invalid("the secret box needs at least one key", field="keys")
        fernets: list[Fernet] = []
        for position, key in enumerate(cleaned, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # The key itself is never echoed: it is a secret.
                raise Invalid(f"key {position} is not a Fernet key (32 url-safe base64 bytes)", field="keys") from None
        self._fernet = MultiFernet(fernets)

    @staticmethod
    def generate_key() -> str:
        """A new random key, in the form the settings take."""
        return Fernet.generate_key().decode()

    def encrypt(self, plain: str) -> str:
        """`plain` encrypted and authenticated with the first key."""
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The text inside `token`; raises UndecryptableSecret when no key opens it."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret("no key of the secret box opens this token") from None

    def rotate(self, token: str) -> str:
        """`token` re-encrypted with the first key (for moving stored secrets off an old key)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret("no key of the secret box opens this token") from None
