"""ECE's error body: {errors: [{code, message, fields?}]} and header x-cloud-error-codes, and the
one table from domain errors to ECE's codes.

The domain refuses with its own errors (tenantry/errors.py); ECE names the same refusal by what
the request was doing. So the face runs each domain call of an operation inside `part(...)`
(finding the named user, its roles, a deletion, an API key...), and `CODES` says, per part and
for the whole face, which ECE code (and, where ECE's differs, status and field names) a domain
error gets. Refusals by ECE's own rules (its body, role names and combinations, user name
pattern, key duration syntax) are `EceInvalid` and carry their code themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import (
    Conflict,
    DomainError,
    ElevationRefused,
    ElevationRequired,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    SignInRefused,
    Unauthenticated,
    Unchangeable,
)
from tenantry.faces.http import DEFAULT_STATUS, JSONResponse

STATUS = dict(DEFAULT_STATUS)
# ECE answers a wrong elevation password as a bad `token` field, not as a 403.
STATUS[ElevationRefused] = 400
# ECE's status for "elevated permissions are required" (the 2023 spec, which has _elevate,
# documents 449 with that code on every operation that needs them).
STATUS[ElevationRequired] = 449
# The codes of refusals no entry of the table names, by status. 400, 401, 404 and 403 are
# ECE's own: `root.invalid_json_request` and `root.resource_not_found` as cloud-sdk-go's
# fixtures show them, `root.unauthorized` and `root.unauthorized.rbac` (a missing platform
# permission) as the spec documents them. The others name statuses ECE documents nowhere
# for these routes (docs/faces/ece.md, "Documented errors").
_GENERIC = {
    400: "root.invalid_json_request",
    401: "root.unauthorized",
    403: "root.unauthorized.rbac",
    404: "root.resource_not_found",
    405: "root.method_not_allowed",
    409: "root.conflict",
    413: "root.request_too_large",
    429: "root.too_many_requests",
    449: "root.unauthorized.rbac.elevated_permissions_required",
    500: "root.unexpected_error",
}
# Any refused HTTP Basic credential, malformed or not (faces/ece/credentials.py).
BASIC_REFUSED = "the supplied credentials are invalid"
# How ECE words a refused password: (code, message, fields), by how the password came.
_SIGN_IN_REFUSED: dict[str, tuple[str, str, list[str]]] = {
    "login": ("root.unauthenticated", "the supplied authentication is invalid", []),
    "basic": ("root.unauthorized", BASIC_REFUSED, []),
}
_ELEVATION_REFUSED = ("authc.invalid_token", "the password is incorrect", ["token"])


def _refused_password(exc: DomainError) -> tuple[str, str, list[str]] | None:
    """How ECE words a refused password (code, message, field names), or None."""
    if isinstance(exc, SignInRefused) and exc.method in _SIGN_IN_REFUSED:
        return _SIGN_IN_REFUSED[exc.method]
    if isinstance(exc, ElevationRefused):
        return _ELEVATION_REFUSED
    return None


class _Coded:
    ece_code: str


def _fields(code: str, message: str, names: Iterable[str]) -> list[FieldError]:
    return [FieldError(name, code, message) for name in names]


class EceInvalid(Invalid, _Coded):
    """A refusal by one of ECE's own rules, with ECE's code."""

    def __init__(self, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message, _fields(code, message, fields))
        self.ece_code = code


class EceUnauthenticated(Unauthenticated, _Coded):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.ece_code = code


# --- the table ---------------------------------------------------------------------------------

Part = Literal["user", "profile", "roles", "deletion", "key", "key_owner", "elevation", "session"]


@dataclass(frozen=True)
class Code:
    """How ECE answers a domain error: its code, and where ECE's differ from the domain's, the
    status, the field names and the message (None: the domain error's)."""

    code: str
    status: int | None = None
    fields: tuple[str, ...] | None = None
    message: str | None = None  # None: the domain error's


# A domain error as the table sees it: its class, and its reason (Unchangeable) or first field.
Key = tuple[type, str | None]

_EVERYWHERE: dict[Key, Code] = {
    (ElevationRequired, None): Code("root.unauthorized.rbac.elevated_permissions_required"),
    (Unchangeable, "builtin"): Code("user.cannot_modify"),
    (Unchangeable, "external"): Code("user.cannot_modify_external"),
    (Unchangeable, "self"): Code("user.restricted_field"),
    (Conflict, "username"): Code("user.user_name.conflict", fields=("user_name",)),
    (Invalid, "email"): Code("user.email.invalid"),
}
_USER_NOT_FOUND = Code("user.not_found")
_RESTRICTED_DELETION = Code("user.restricted_deletion")
_ROLES_FORBIDDEN = Code("user.roles.forbidden", 400, ("security.roles",))
_INVALID_TOKEN = Code("authc.invalid_token", 400)
# ECE documents one code for every refused API key request.
_KEY_INVALID = "api_keys.invalid_input"
# What ECE answers a token it cannot refresh or drop the elevation of.
_NOT_A_SESSION = Code(
    "root.unauthorized",
    401,
    message="this needs a session token (from POST /api/v1/users/auth/_login)",
)

CODES: dict[Part | None, dict[Key, Code]] = {
    None: _EVERYWHERE,
    # Finding the user an operation names (`/users/{user_name}`, the caller for `/user`).
    "user": {(NotFound, None): _USER_NOT_FOUND},
    # The caller's own name, e-mail and `security.enabled` (PATCH /user, PATCH /users/{name}).
    "profile": {(Unchangeable, "self"): Code("user.restricted_field", fields=("enabled",))},
    # `security.roles`: a refused role change is ECE's 400, for yourself as for anyone.
    "roles": {(Forbidden, None): _ROLES_FORBIDDEN, (Unchangeable, "self"): _ROLES_FORBIDDEN},
    # Deleting yourself is ECE's restricted deletion; a built-in user, like an external one,
    # "cannot be modified" (the face-wide entries), as ECE lists both codes for DELETE.
    "deletion": {
        (NotFound, None): _USER_NOT_FOUND,
        (Unchangeable, "self"): _RESTRICTED_DELETION,
    },
    "key": {
        (NotFound, None): Code("api_keys.key_not_found"),
        (Invalid, "expiresAt"): Code(_KEY_INVALID, fields=("expiration",)),
        (Invalid, "name"): Code(_KEY_INVALID, fields=("description",)),
    },
    "key_owner": {(NotFound, None): Code("api_keys.user_not_found")},
    # Only a session elevates: any other credential is ECE's invalid token.
    "elevation": {(Invalid, None): _INVALID_TOKEN, (NotFound, None): _INVALID_TOKEN},
    # Only a session logs out, is refreshed or drops its elevation: any other credential (an
    # API key, HTTP Basic) is not the authentication token these operations need.
    "session": {(Invalid, None): _NOT_A_SESSION, (NotFound, None): _NOT_A_SESSION},
}
_PART = "_ece_part"


@contextmanager
def part(name: Part) -> Iterator[None]:
    """Domain calls made for one part of an ECE operation: a refusal raised inside is answered
    with that part's codes (the innermost part wins)."""
    try:
        yield
    except DomainError as exc:
        if getattr(exc, _PART, None) is None:
            setattr(exc, _PART, name)
        raise


def _detail(exc: DomainError) -> str | None:
    if isinstance(exc, Unchangeable):
        return exc.reason
    return exc.fields[0].field if exc.fields else None


def code_for(exc: DomainError) -> Code | None:
    """The table's answer: the most specific class first; for each, its reason or field before
    any, and a part's entry before the face's."""
    tables = [CODES[p] for p in (getattr(exc, _PART, None), None) if p in CODES]
    details = (_detail(exc), None)
    for cls in type(exc).__mro__:
        for detail in details:
            for table in tables:
                found = table.get((cls, detail))
                if found is not None:
                    return found
    return None


def _answer(exc: DomainError, status: int) -> tuple[int, str, str, list[str]]:
    """The status, code, message and field names ECE answers `exc` with."""
    names = [f.field for f in exc.fields]
    own: str | None = getattr(exc, "ece_code", None)
    if own is not None:
        return status, own, exc.message, names
    found = code_for(exc)
    if found is None:
        return status, _GENERIC.get(status, "root.unexpected_error"), exc.message, names
    fields = names if found.fields is None else list(found.fields)
    return found.status or status, found.code, found.message or exc.message, fields


def render(request: Request, status: int, exc: DomainError) -> Response:
    refused = _refused_password(exc)
    if refused is not None:
        code, message, fields = refused
    else:
        status, code, message, fields = _answer(exc, status)
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return JSONResponse(
        {"errors": [error]}, status_code=status, headers={"x-cloud-error-codes": code}
    )
