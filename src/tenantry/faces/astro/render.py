"""Domain objects -> Astro JSON. Plain dicts: cheaper than response models on the hot path."""

from __future__ import annotations

from typing import Any

from tenantry.authz.engine import Grant
from tenantry.authz.scopes import ScopeType
from tenantry.clock import iso_z
from tenantry.db.paging import Page
from tenantry.directory.me import Me
from tenantry.directory.members import Member, RoleSet, ShownUser

JSON = dict[str, Any]


def user_base(user: ShownUser) -> JSON:
    return {
        "avatarUrl": user.avatar_url,
        "createdAt": iso_z(user.created_at),
        "fullName": user.full_name,
        "id": user.id,
        "status": user.status,
        "updatedAt": iso_z(user.updated_at),
        "username": user.username,
    }


def role_set(roles: RoleSet) -> JSON:
    body: JSON = {}
    if roles.organization_role is not None:
        body["organizationRole"] = roles.organization_role
    body["workspaceRoles"] = [{"role": r, "workspaceId": w} for w, r in roles.workspace_roles]
    body["deploymentRoles"] = [{"deploymentId": d, "role": r} for d, r in roles.deployment_roles]
    body["dagRoles"] = [
        _dag_role(d.deployment_id, d.role, d.dag_id, d.dag_tag) for d in roles.dag_roles
    ]
    return body


def _dag_role(deployment_id: str, role: str, dag_id: str | None, dag_tag: str | None) -> JSON:
    body: JSON = {"deploymentId": deployment_id, "role": role}
    if dag_id is not None:
        body["dagId"] = dag_id
    if dag_tag is not None:
        body["dagTag"] = dag_tag
    return body


def member(m: Member) -> JSON:
    return user_base(m.user) | role_set(m.roles)


def members_page(page: Page[Member]) -> JSON:
    return {
        "limit": page.limit,
        "offset": page.offset,
        "totalCount": page.total,
        "users": [member(m) for m in page.items],
    }


def _scope(grant: Grant) -> JSON:
    scope = grant.scope
    if scope.type is ScopeType.SYSTEM:
        return {"entityId": "SYSTEM", "type": "SYSTEM"}
    if scope.type is ScopeType.DAG:
        return {"entityId": scope.dag_id, "type": "DAG", "deploymentId": scope.deployment_id}
    if scope.type is ScopeType.DAG_TAG:
        return {
            "entityId": scope.deployment_id,
            "type": "DAG",
            "deploymentId": scope.deployment_id,
            "dagTag": scope.dag_tag,
        }
    return {"entityId": scope.entity_id, "type": scope.type.value}


def self_user(me: Me) -> JSON:
    body = user_base(me.user)
    body["featureFlags"] = [{"key": k, "value": v} for k, v in me.feature_flags]
    body["invites"] = [
        {"expiresAt": iso_z(i.expires_at), "inviteId": i.id, "organizationId": i.organization_id}
        for i in me.invites
    ]
    body["isIdpManaged"] = me.user.idp_managed
    if me.organization_id is not None:
        body["organizationId"] = me.organization_id
    body["roles"] = [{"role": g.role, "scope": _scope(g)} for g in me.grants]
    return body
