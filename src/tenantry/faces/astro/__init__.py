"""The astro face: Astro's IAM and Platform APIs, served under /v1, /iam/v1beta1 and
/platform/v1beta1 by the same handlers."""

from __future__ import annotations

from fastapi import FastAPI

from tenantry.faces.astro import (
    deployments,
    errors,
    invites,
    organizations,
    roles,
    teams,
    tokens,
    users,
    workspaces,
)
from tenantry.faces.http import make_face_app

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")
ROUTE_MODULES = (users, organizations, workspaces, deployments, invites, roles, teams, tokens)


def build(max_body_bytes: int) -> FastAPI:
    app = make_face_app(
        "Tenantry: Astro face",
        "Astro (Astronomer) IAM and Platform user, role and organization API.",
        errors.render,
        errors.STATUS,
        max_body_bytes,
    )
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    return app
