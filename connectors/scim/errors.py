"""The one error SCIM code raises: what RFC 7644 §3.12 puts in an error response."""

from __future__ import annotations


class ScimError(Exception):
    """A request SCIM refuses: the HTTP status, the `scimType` where RFC 7644 defines one, and a detail."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def invalid_value(detail: str) -> ScimError:
    """400 invalidValue: a value of the wrong type, a required one missing."""
    return ScimError(400, detail, "invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    """400 invalidSyntax: the body is not the message it should be."""
    return ScimError(400, detail, "invalidSyntax")


def invalid_path(detail: str) -> ScimError:
    """400 invalidPath: a PATCH path that does not parse or names nothing we know."""
    return ScimError(400, detail, "invalidPath")
