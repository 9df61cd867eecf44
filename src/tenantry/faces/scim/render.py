"""The SCIM face's one error table, and its responses (`application/scim+json`).

Every refusal is RFC 7644 §3.12's body: `{"schemas": [Error], "status": "400", "scimType":
..., "detail": ...}`. Domain errors map by class (and, for Invalid, by the code of their first
field); anything raised in this face that carries `.status`, `.scim_type` and `.detail` (the
filter and PATCH parsers' ScimError, the interim seams' errors) is rendered as it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    Unauthenticated,
    Unchangeable,
)
from tenantry.faces.http import JSONResponse

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MEDIA_TYPE = "application/scim+json"

STATUS: Mapping[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    RateLimited: 429,
}
# scimType by domain error class (the first that the error is an instance of).
_SCIM_TYPES: tuple[tuple[type[DomainError], str], ...] = (
    (Unchangeable, "mutability"),
    (Conflict, "uniqueness"),
    (Invalid, "invalidValue"),
)
# ... and, for Invalid, by the code of its first field where that says more.
_FIELD_CODES = {
    "uniqueness": "uniqueness",
    "conflict": "uniqueness",
    "immutable": "mutability",
    "mutability": "mutability",
    "syntax": "invalidSyntax",
    "invalid_filter": "invalidFilter",
    "invalid_path": "invalidPath",
    "no_target": "noTarget",
    "json_invalid": "invalidSyntax",
    "too_many": "tooMany",
}


@runtime_checkable
class ScimProblem(Protocol):
    """An error that knows its SCIM rendering (the parsers' ScimError)."""

    status: int
    scim_type: str | None
    detail: str


class ScimResponse(JSONResponse):
    media_type = MEDIA_TYPE


def scim_type_of(exc: DomainError) -> str | None:
    if exc.fields and exc.fields[0].code in _FIELD_CODES:
        return _FIELD_CODES[exc.fields[0].code]
    for cls, scim_type in _SCIM_TYPES:
        if isinstance(exc, cls):
            return scim_type
    return None


def error_body(status: int, scim_type: str | None, detail: str) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type is not None:
        body["scimType"] = scim_type
    return body


def error_response(status: int, scim_type: str | None, detail: str) -> Response:
    headers = {"www-authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return ScimResponse(error_body(status, scim_type, detail), status_code=status, headers=headers)


def render(_request: Request, status: int, exc: DomainError) -> Response:
    """The face's error renderer (faces.http's hook): every refusal, whatever raised it."""
    if isinstance(exc, ScimProblem):
        return error_response(exc.status, exc.scim_type, exc.detail)
    scim_type = scim_type_of(exc) if 400 <= status < 500 and status not in (404, 412) else None
    if status == 412:
        scim_type = None
    return error_response(status, scim_type, exc.message)


def problem(exc: ScimProblem) -> Response:
    return error_response(exc.status, exc.scim_type, exc.detail)
