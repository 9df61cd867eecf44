"""ECE's error body: {errors: [{code, message, fields?}]} and header x-cloud-error-codes."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import DomainError
from tenantry.faces.http import DEFAULT_STATUS, JSONResponse

STATUS = dict(DEFAULT_STATUS)
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


def render(request: Request, status: int, exc: DomainError) -> Response:
    code = getattr(exc, "ece_code", None) or _CODES.get(status, "root.unexpected_error")
    error: dict[str, object] = {"code": code, "message": exc.message}
    if exc.fields:
        error["fields"] = [f.field for f in exc.fields]
    return JSONResponse(
        {"errors": [error]}, status_code=status, headers={"x-cloud-error-codes": code}
    )
