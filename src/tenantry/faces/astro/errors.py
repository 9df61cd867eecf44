"""Astro's error body: {message, requestId, statusCode, fieldErrors?}, and the one table from
domain errors to Astro's statuses.

Astro's specs document 400, 401, 403, 404 and 500 and nothing else (tests/faces/astro/
test_documented_errors.py checks every route against them; docs/faces/astro.md, "Documented
errors", lists what remains different and why).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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

# Astro's specs document only 400/401/403/404/500, so an oversized body and a conflict (a name
# already taken, an invitee already a member) are 400s here: the message says which.
STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    PayloadTooLarge: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 400,
    RateLimited: 429,  # no astro route is rate limited (sign-in is not part of Astro's API)
}


@contextmanager
def unreachable_is_forbidden() -> Iterator[None]:
    """For the operations whose spec documents a 403 but no 404 (ListUsers, ListWorkspaces,
    ListDeployments, CreateDeployment). There the only object the domain can fail to find is
    the organization in the path (an unknown id in a filter matches nothing, one in a body is
    a 400), and an organization the caller cannot reach is Astro's 403; one that does not
    exist reads the same, so existence still does not leak."""
    try:
        yield
    except NotFound as exc:
        raise Forbidden(exc.message) from exc


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
