"""Domain errors. Services raise these; every face maps them to its own error body."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str


@dataclass
class DomainError(Exception):
    message: str
    fields: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


class Invalid(DomainError):
    """The request is well-formed but its content is not acceptable (400)."""


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it exists (404)."""


class Conflict(DomainError):
    """The change would break a uniqueness or state rule (409)."""


class Unauthenticated(DomainError):
    """No credential, or one that is unknown, expired or revoked (401)."""


class Forbidden(DomainError):
    """The caller is known but lacks the permission (403)."""


class PayloadTooLarge(DomainError):
    """The request body exceeds the configured limit."""


class RateLimited(DomainError):
    """Too many attempts; `retry_after` seconds until the next window (429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
