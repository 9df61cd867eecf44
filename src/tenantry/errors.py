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
    # The request's transaction commits what it wrote before the refusal (its audit event)
    # instead of rolling back. Only for refusals that are themselves worth keeping.
    keeps_writes: bool = field(default=False, kw_only=True)

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


class PreconditionFailed(DomainError):
    """The object is no longer at the version the caller names (an ETag's If-Match: 412)."""


class PayloadTooLarge(DomainError):
    """The request body exceeds the configured limit."""


class RateLimited(DomainError):
    """Too many attempts; `retry_after` seconds until the next window (429)."""

    def __init__(self, message: str, retry_after: int, *, keeps_writes: bool = False) -> None:
        super().__init__(message, keeps_writes=keeps_writes)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """Something the request needs is not there: a service outside Tenantry that did not
    answer (the DNS for a domain's verification, a realm's directory) or a setting the
    operator left unset (TENANTRY_SECRET_KEY): 503, worth retrying later."""


class ElevationRequired(Forbidden):
    """The credential must have re-entered its password recently (elevated permissions)."""


@dataclass
class Unchangeable(Invalid):
    """The account may not be changed this way. `reason`: "builtin" (a built-in user),
    "external" (an identity provider owns it), "self" (you may not do this to yourself)."""

    reason: str = field(default="builtin", kw_only=True)


class SignInRefused(Unauthenticated):
    """A password was refused: unknown account, wrong password, locked, disabled or pending
    all read the same (401). The failure's count and audit event are kept (`keeps_writes`).
    `method` says how the password came (`login`: to start a session; `basic`: HTTP Basic on
    a request), for faces whose wire words the two refusals differently."""

    def __init__(self, message: str, *, method: str) -> None:
        super().__init__(message, keeps_writes=True)
        self.method = method


class ElevationRefused(Forbidden):
    """The password re-entered to elevate is wrong (403 unless a face says otherwise); the
    failure's count and audit event are kept."""

    def __init__(self, message: str) -> None:
        super().__init__(message, keeps_writes=True)
