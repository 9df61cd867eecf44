"""The SCIM 2.0 face (RFC 7643/7644) at /scim/v2, for identity providers: Users are the
accounts the token's organization manages, Groups its teams. docs/faces/scim.md."""

from __future__ import annotations

from fastapi import FastAPI

from tenantry.faces.http import make_face_app
from tenantry.faces.scim import bulk, discovery, groups, render, search, users

PREFIX = "/scim/v2"


def build(max_body_bytes: int) -> FastAPI:
    app = make_face_app(
        "Tenantry: SCIM 2.0",
        "SCIM 2.0 provisioning for identity providers; authenticate with an organization's "
        "SCIM token.",
        render.render,
        render.STATUS,
        max_body_bytes,
    )
    # /ServiceProviderConfig's bulk.maxPayloadSize: the body limit the input guard enforces.
    app.state.max_body_bytes = max_body_bytes
    app.include_router(users.router)
    app.include_router(groups.router)
    app.include_router(discovery.router)
    app.include_router(search.router)
    app.include_router(bulk.router)
    return app
