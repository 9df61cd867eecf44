"""Unleash's error body: {id, name, message, details}, with the names Unleash 8.2 uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthenticated
from tenantry.faces.http import DEFAULT_STATUS, JSONResponse
from tenantry.faces.unleash.user_admin import NeedsPermission

STATUS = dict(DEFAULT_STATUS)
LOGIN_PATH = "/auth/simple/login"
MISSING = (
    "You must log in to use Unleash. Your request had no authorization header, so we could "
    f"not authorize you. Try logging in at {LOGIN_PATH}"
)
BAD_CREDENTIAL = "You must log in to use Unleash."
VALIDATION = "Request validation failed: your request body or params contain invalid data"
NO_ROUTE = "no such route"


@dataclass
class AuthenticationRequired(Unauthenticated):
    """No credential at all (Unleash answers with the login hint)."""


@dataclass
class ContentTypeError(Invalid):
    """A body in a content type other than JSON (415)."""


STATUS[ContentTypeError] = 415


def _body(name: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "message": message,
        "details": details if details is not None else [{"message": message}],
    }


def body_for(request: Request, status: int, exc: DomainError) -> dict[str, Any]:
    if isinstance(exc, AuthenticationRequired):
        return {
            **_body("AuthenticationRequired", MISSING),
            "path": LOGIN_PATH,
            "type": "password",
            "defaultHidden": False,
        }
    if isinstance(exc, Unauthenticated):
        return _body("UnauthorizedError", BAD_CREDENTIAL)
    if isinstance(exc, NeedsPermission):
        return {**_body("PermissionError", exc.message), "permissions": exc.permissions}
    if isinstance(exc, Forbidden):
        return _body("NoAccessError", exc.message)
    if isinstance(exc, ContentTypeError):
        return _body("ContentTypeError", exc.message)
    if isinstance(exc, NotFound):
        if exc.message == NO_ROUTE:
            path = request.scope.get("root_path", "") + request.scope.get("path", "")
            if request.scope.get("path", "").startswith(request.scope.get("root_path", "")):
                path = request.scope.get("path", "")
            return _body(
                "NotFoundError", f"The path you were looking for ({path}) is not available."
            )
        return _body("NotFoundError", exc.message)
    if isinstance(exc, Invalid):
        if exc.fields:
            details = [
                {"path": f.field, "message": f.message} if f.field else {"message": f.message}
                for f in exc.fields
            ]
            return _body(
                "BadDataError",
                f"{VALIDATION}. Refer to the `details` list for more information.",
                details,
            )
        return _body("BadDataError", f"{VALIDATION}: {exc.message}", [{"message": exc.message}])
    if isinstance(exc, Conflict):
        return _body("NameExistsError", exc.message)
    names = {413: "ContentTooLarge", 429: "TooManyRequests"}
    return _body(names.get(status, "UnknownError"), exc.message)


def render(request: Request, status: int, exc: DomainError) -> Response:
    return JSONResponse(body_for(request, status, exc), status_code=status)
