"""The ece face: Elastic Cloud Enterprise's user API under /api/v1."""

from __future__ import annotations

from fastapi import FastAPI

from tenantry.faces.ece import api_keys, auth, errors, users
from tenantry.faces.http import make_face_app

PREFIX = "/api/v1"


def build(max_body_bytes: int) -> FastAPI:
    app = make_face_app(
        "Tenantry: Elastic Cloud Enterprise face",
        "Elastic Cloud Enterprise user, API key and authentication API.",
        errors.render,
        errors.STATUS,
        max_body_bytes,
    )
    app.include_router(auth.router)
    app.include_router(api_keys.router)
    app.include_router(users.router)
    return app
