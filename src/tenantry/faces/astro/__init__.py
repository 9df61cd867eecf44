"""The astro face: Astro's IAM and Platform APIs, served under /v1, /iam/v1beta1 and
/platform/v1beta1 by the same handlers."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from tenantry.faces.astro import errors
from tenantry.faces.http import make_face_app

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")
# Route modules of the face; each defines `router`.
MODULES = (
    "users",
    "organizations",
    "workspaces",
    "deployments",
    "invites",
    "roles",
    "teams",
    "tokens",
)


def build(max_body_bytes: int) -> FastAPI:
    app = make_face_app(
        "Tenantry: Astro face",
        "Astro (Astronomer) IAM and Platform user, role and organization API.",
        errors.render,
        errors.STATUS,
        max_body_bytes,
    )
    for name in MODULES:
        try:
            module = importlib.import_module(f"tenantry.faces.astro.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tenantry.faces.astro.{name}":
                raise
            continue
        app.include_router(module.router)
    return app
