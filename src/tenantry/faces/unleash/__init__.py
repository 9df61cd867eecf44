"""The unleash face: Unleash's admin user API under /api/admin and /auth/simple."""

from __future__ import annotations

from fastapi import FastAPI

from tenantry.faces.http import make_face_app
from tenantry.faces.unleash import errors, fallback, logout, me, pats, simple, state, users
from tenantry.faces.unleash.wire import UnleashWire

PREFIXES = ("/api/admin", "/auth/simple")
# Exact paths outside those prefixes (POST /logout and its page), served by `build_root`'s app.
ROOT_PATHS = logout.PATHS


def _face_app(max_body_bytes: int) -> FastAPI:
    return make_face_app(
        "Tenantry: Unleash face",
        "Unleash admin user API.",
        errors.render,
        errors.STATUS,
        max_body_bytes,
    )


def build_root(max_body_bytes: int) -> FastAPI:
    """The app of ROOT_PATHS (mounted at those exact paths, not as a prefix)."""
    app = _face_app(max_body_bytes)
    app.include_router(logout.router)
    fallback.add_page_fallback(app, logout.around_logout)
    app.add_middleware(UnleashWire)
    return app


def build(max_body_bytes: int) -> dict[str, FastAPI]:
    """One face app per prefix (their paths do not overlap)."""
    apps = {prefix: _face_app(max_body_bytes) for prefix in PREFIXES}
    apps["/api/admin"].include_router(me.router)
    apps["/api/admin"].include_router(users.router)
    apps["/api/admin"].include_router(pats.router)
    apps["/api/admin"].include_router(state.router)
    apps["/auth/simple"].include_router(simple.router)
    fallback.add_api_fallback(apps["/api/admin"])
    fallback.add_page_fallback(apps["/auth/simple"])
    for app in apps.values():
        app.add_middleware(UnleashWire)
    return apps
