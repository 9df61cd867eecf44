"""ECE's error body: {errors: [{code, message, fields?}]} and header x-cloud-error-codes."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import DomainError, ElevationRefused, SignInRefused
from tenantry.faces.http import DEFAULT_STATUS, JSONResponse

STATUS = dict(DEFAULT_STATUS)
# ECE answers a wrong elevation password as a bad `token` field, not as a 403.
STATUS[ElevationRefused] = 400
_CODES = {
    400: "root.invalid_json_request",
    401: "root.unauthorized",
    403: "root.forbidden",
    404: "root.resource_not_found",
    409: "root.conflict",
    413: "root.request_too_large",
    429: "root.too_many_requests",
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


def _worded(exc: DomainError, status: int) -> tuple[str, str, list[str]]:
    """The code, message and field names ECE gives the error."""
    if isinstance(exc, SignInRefused) and exc.method in _SIGN_IN_REFUSED:
        return _SIGN_IN_REFUSED[exc.method]
    if isinstance(exc, ElevationRefused):
        return _ELEVATION_REFUSED
    code = getattr(exc, "ece_code", None) or _CODES.get(status, "root.unexpected_error")
    return code, exc.message, [f.field for f in exc.fields]


def render(request: Request, status: int, exc: DomainError) -> Response:
    code, message, fields = _worded(exc, status)
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return JSONResponse(
        {"errors": [error]}, status_code=status, headers={"x-cloud-error-codes": code}
    )
