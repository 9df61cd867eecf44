"""API tokens -> Astro JSON (plain dicts, as in render.py). The secret (`token`) appears only
in the answers to create and rotate."""

from __future__ import annotations

from typing import Any

from tenantry.clock import iso_z
from tenantry.db.paging import Page
from tenantry.directory.api_tokens import ApiTokenView
from tenantry.directory.members import RoleSet
from tenantry.faces.astro import render, render_iam

JSON = dict[str, Any]


def api_token(view: ApiTokenView) -> JSON:
    t = view.token
    body: JSON = {
        "createdAt": iso_z(t.created_at),
        "createdBy": render_iam.subject(view.subjects, t.created_by),
        "description": t.description,
        "id": t.id,
        "name": t.name,
        "roles": [
            {"entityId": r.entity_id, "entityType": r.entity_type, "role": r.role}
            for r in view.roles
        ],
        "shortToken": t.short_token,
        "startAt": iso_z(t.created_at),
        "type": t.scope_type,
        "updatedAt": iso_z(t.updated_at),
        "updatedBy": render_iam.subject(view.subjects, t.updated_by),
    }
    if t.expires_at is not None:
        body["endAt"] = iso_z(t.expires_at)
    if t.expiry_days is not None:
        body["expiryPeriodInDays"] = t.expiry_days
    if t.last_used_at is not None:
        body["lastUsedAt"] = iso_z(t.last_used_at)
    if view.secret is not None:
        body["token"] = view.secret
    return body


def api_tokens_page(page: Page[ApiTokenView]) -> JSON:
    return {
        "limit": page.limit,
        "offset": page.offset,
        "tokens": [api_token(v) for v in page.items],
        "totalCount": page.total,
    }


def api_token_roles(roles: RoleSet) -> JSON:
    return render.role_set(roles)
