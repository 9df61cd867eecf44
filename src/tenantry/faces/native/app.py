"""Build the native face application."""

from __future__ import annotations

from fastapi import FastAPI

from tenantry.faces.http import make_face_app
from tenantry.faces.native import (
    audit,
    auth,
    domains,
    email,
    errors,
    invites,
    realms,
    routes,
    scim_tokens,
    system_api_tokens,
)

PREFIX = "/tenantry/v1"


def build(max_body_bytes: int) -> FastAPI:
    app = make_face_app(
        "Tenantry: native API",
        "Tenantry's own API: system users, organizations, tokens, permission checks.",
        errors.render,
        errors.STATUS,
        max_body_bytes,
    )
    app.include_router(routes.router)
    app.include_router(auth.router)
    app.include_router(invites.router)
    app.include_router(email.router)
    app.include_router(audit.router)
    app.include_router(scim_tokens.router)
    app.include_router(domains.router)
    app.include_router(realms.router)
    app.include_router(system_api_tokens.router)
    return app
