"""Domain errors raised by store services; the API maps each to one HTTP status."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error a store service raises on purpose."""

    code = "store_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(StoreError):
    """The entity does not exist in the caller's organisation."""

    code = "not_found"


class Conflict(StoreError):
    """The change would break an invariant held by other rows (overlap, duplicate name)."""

    code = "conflict"

    def __init__(self, message: str, *, code: str = "conflict", field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.code = code


class Invalid(StoreError):
    """The input itself is wrong, whatever else is stored."""

    code = "invalid"


class NotAllowed(StoreError):
    """The entity's state forbids the change (a removed member booking, a revoked invitation accepted)."""

    code = "not_allowed"
