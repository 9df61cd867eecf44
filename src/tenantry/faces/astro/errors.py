"""Astro's error body: {message, requestId, statusCode, fieldErrors?}."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
)
from tenantry.faces.http import JSONResponse, request_id

# Astro's specs document only 400/401/403/404/500, so an oversized body is a 400 here.
STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    PayloadTooLarge: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
}


def render(request: Request, status: int, exc: DomainError) -> Response:
    body: dict[str, object] = {
        "message": exc.message,
        "requestId": request_id(request),
        "statusCode": status,
    }
    if status == 400 and exc.fields:
        body["fieldErrors"] = [
            {"code": f.code, "field": f.field, "message": f.message} for f in exc.fields
        ]
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)
