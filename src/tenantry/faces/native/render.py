"""Domain objects -> native JSON (camelCase, RFC 3339 timestamps)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tenantry.authz.engine import Grant
from tenantry.clock import iso_z, utcnow
from tenantry.db.models import Organization, OrganizationDomain, Token, User
from tenantry.directory import domains

JSON = dict[str, Any]


def user(u: User, elevated_until: datetime | None = None) -> JSON:
    """`elevated_until`: the caller's own credential's elevation, when `u` is the caller."""
    return {
        "id": u.id,
        "seq": u.seq,
        "username": u.username,
        "email": u.email,
        "emailVerified": u.email_verified,
        "fullName": u.full_name,
        "avatarUrl": u.avatar_url,
        "status": u.status,
        "enabled": u.enabled,
        "builtin": u.builtin,
        "accountType": u.account_type,
        "realm": u.realm,
        "isIdpManaged": u.idp_managed,
        "primaryOrganizationId": u.primary_organization_id,
        "elevatedPermissions": _elevation(elevated_until),
        "firstLoginAt": _ts(u.first_login_at),
        "lastLoginAt": _ts(u.last_login_at),
        "seenAt": _ts(u.seen_at),
        "createdAt": iso_z(u.created_at),
        "updatedAt": iso_z(u.updated_at),
    }


def _ts(moment: datetime | None) -> str | None:
    return iso_z(moment) if moment is not None else None


def _elevation(until: datetime | None) -> JSON:
    """Elevated permissions ("sudo") belong to a session: shown for the caller's own."""
    live = until is not None and until > utcnow()
    return {"enabled": live, "expiresAt": _ts(until) if live else None}


def organization(o: Organization) -> JSON:
    return {
        "id": o.id,
        "name": o.name,
        "billingEmail": o.billing_email,
        "supportPlan": o.support_plan,
        "status": o.status,
        "memberCount": o.member_count,
        "createdAt": iso_z(o.created_at),
        "updatedAt": iso_z(o.updated_at),
    }


def token(t: Token, secret: str | None = None) -> JSON:
    body: JSON = {
        "id": t.id,
        "kind": t.kind,
        "name": t.name,
        "shortToken": t.short_token,
        "userId": t.user_id,
        "expiresAt": iso_z(t.expires_at) if t.expires_at else None,
        "lastUsedAt": iso_z(t.last_used_at) if t.last_used_at else None,
        "revokedAt": iso_z(t.revoked_at) if t.revoked_at else None,
        "createdAt": iso_z(t.created_at),
    }
    if secret is not None:
        body["token"] = secret  # shown once, on creation
    return body


def grant(g: Grant) -> JSON:
    return g.as_dict()


def page(items: list[JSON], total: int, offset: int, limit: int, key: str) -> JSON:
    return {key: items, "totalCount": total, "offset": offset, "limit": limit}


def scim_token(t: Token, secret: str | None = None) -> JSON:
    body: JSON = {
        "id": t.id,
        "organizationId": t.organization_id,
        "name": t.name,
        "shortToken": t.short_token,
        "defaultRole": t.default_role,
        "expiresAt": _ts(t.expires_at),
        "lastUsedAt": _ts(t.last_used_at),
        "createdBy": t.created_by,
        "createdAt": iso_z(t.created_at),
    }
    if secret is not None:
        body["token"] = secret  # shown once, on creation
    return body


def domain(d: OrganizationDomain) -> JSON:
    """A claimed domain and the TXT record that proves it (public: it is published in DNS)."""
    return {
        "id": d.id,
        "organizationId": d.organization_id,
        "domain": d.domain,
        "status": domains.status_of(d),
        "txtRecord": {"name": domains.record_name(d), "value": domains.record_value(d)},
        "verifiedAt": _ts(d.verified_at),
        "createdBy": d.created_by,
        "createdAt": iso_z(d.created_at),
    }


def system_api_token(t: Token, role: str, secret: str | None = None) -> JSON:
    body: JSON = {
        "id": t.id,
        "name": t.name,
        "role": role,
        "shortToken": t.short_token,
        "expiresAt": _ts(t.expires_at),
        "lastUsedAt": _ts(t.last_used_at),
        "createdBy": t.created_by,
        "createdAt": iso_z(t.created_at),
    }
    if secret is not None:
        body["token"] = secret  # shown once, on creation
    return body
