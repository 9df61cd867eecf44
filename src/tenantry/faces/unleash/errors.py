"""Unleash's error body: {id, name, message, details}."""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import DomainError
from tenantry.faces.http import DEFAULT_STATUS, JSONResponse

STATUS = dict(DEFAULT_STATUS)
_NAMES = {
    400: "BadDataError",
    401: "AuthenticationRequired",
    403: "NoAccessError",
    404: "NotFoundError",
    409: "NameExistsError",
    413: "ContentTooLarge",
    429: "TooManyRequests",
    500: "UnknownError",
}


def render(request: Request, status: int, exc: DomainError) -> Response:
    name = _NAMES.get(status, "UnknownError")
    body = {
        "id": str(uuid.uuid4()),
        "name": name,
        "message": exc.message,
        "details": [{"message": exc.message}],
    }
    return JSONResponse(body, status_code=status)
