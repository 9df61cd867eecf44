"""Native errors are RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import DomainError
from tenantry.faces.http import DEFAULT_STATUS, JSONResponse, request_id

STATUS = dict(DEFAULT_STATUS)
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"


def render(request: Request, status: int, exc: DomainError) -> Response:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": exc.message,
        "instance": request.url.path,
        "requestId": request_id(request),
    }
    if exc.fields:
        body["errors"] = [
            {"field": f.field, "code": f.code, "message": f.message} for f in exc.fields
        ]
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return ProblemResponse(body, status_code=status, headers=headers)
