"""The ece face: Elastic Cloud Enterprise's user API under /api/v1."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request

from tenantry.errors import FieldError, Invalid
from tenantry.faces.ece import api_keys, auth, errors, users
from tenantry.faces.http import NUL_MESSAGE, make_face_app

PREFIX = "/api/v1"


def no_nul_in_path(request: Request) -> None:
    """A NUL character in a user name or key id of the path: 400 before any look-up
    (PostgreSQL refuses NUL in a parameter; the input guard covers query strings and bodies)."""
    if "\x00" in request.scope.get("path", ""):
        raise Invalid(NUL_MESSAGE, [FieldError("path", "invalid", NUL_MESSAGE)])


def build(max_body_bytes: int) -> FastAPI:
    app = make_face_app(
        "Tenantry: Elastic Cloud Enterprise face",
        "Elastic Cloud Enterprise user, API key and authentication API.",
        errors.render,
        errors.STATUS,
        max_body_bytes,
    )
    app.router.dependencies.append(Depends(no_nul_in_path))  # for the routers included next
    app.include_router(auth.router)
    app.include_router(api_keys.router)
    app.include_router(users.router)
    return app
