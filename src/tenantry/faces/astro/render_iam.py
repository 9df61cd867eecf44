"""Invites, custom roles and teams -> Astro JSON (plain dicts, as in render.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantry.authz.catalogue import BuiltinRole
from tenantry.clock import iso_z
from tenantry.db.models import CustomRole, User
from tenantry.db.paging import Page
from tenantry.directory.custom_roles import RoleListing, RoleView
from tenantry.directory.invites import InviteView
from tenantry.directory.members import RoleSet
from tenantry.directory.subjects import Subject
from tenantry.directory.teams import TeamMemberView, TeamView
from tenantry.faces.astro import render

JSON = dict[str, Any]


def subject(subjects: Mapping[str, Subject], subject_id: str | None) -> JSON:
    """BasicSubjectProfile of a user or an API token; just the id when neither is known
    (deleted since, or the system itself, whose id is empty)."""
    found = subjects.get(subject_id) if subject_id else None
    if isinstance(found, User):
        return {
            "id": found.id,
            "subjectType": "USER",
            "username": found.username,
            "fullName": found.full_name,
            "avatarUrl": found.avatar_url,
        }
    if found is not None:
        return {"id": found.id, "subjectType": "SERVICEKEY", "apiTokenName": found.name}
    return {"id": subject_id or ""}


# --- invites ---------------------------------------------------------------------------------


def invite(view: InviteView) -> JSON:
    inv = view.invite
    invitee = subject(view.subjects, inv.user_id)
    invitee.setdefault("username", inv.invitee_email)
    body: JSON = {
        "expiresAt": iso_z(inv.expires_at),
        "inviteId": inv.id,
        "invitee": invitee,
        "inviter": subject(view.subjects, inv.inviter_id),
        "organizationId": inv.organization_id,
        "organizationName": view.organization.name,
    }
    if inv.user_id is not None:
        body["userId"] = inv.user_id
    return body


# --- roles -----------------------------------------------------------------------------------


def _role(role: CustomRole, subjects: Mapping[str, Subject]) -> JSON:
    return {
        "createdAt": iso_z(role.created_at),
        "createdBy": subject(subjects, role.created_by),
        "description": role.description,
        "id": role.id,
        "name": role.name,
        "restrictedWorkspaceIds": list(role.restricted_workspace_ids),
        "scopeType": role.scope_type,
        "updatedAt": iso_z(role.updated_at),
        "updatedBy": subject(subjects, role.updated_by),
    }


def role_with_permissions(view: RoleView) -> JSON:
    return _role(view.role, view.subjects) | {"permissions": sorted(view.role.permissions)}


def default_role(role: BuiltinRole) -> JSON:
    return {
        "description": role.description,
        "name": role.name,
        "permissions": sorted(role.permissions),
        "scopeType": role.scope.value,
    }


def roles_page(listing: RoleListing) -> JSON:
    page = listing.page
    body: JSON = {
        "limit": page.limit,
        "offset": page.offset,
        "roles": [_role(r, listing.subjects) for r in page.items],
        "totalCount": page.total,
    }
    if listing.default_roles is not None:
        body["defaultRoles"] = [default_role(r) for r in listing.default_roles]
    return body


# --- teams -----------------------------------------------------------------------------------


def _roles_count(roles: RoleSet) -> int:
    own = 1 if roles.organization_role is not None else 0
    return own + len(roles.workspace_roles) + len(roles.deployment_roles) + len(roles.dag_roles)


def team(view: TeamView) -> JSON:
    t = view.team
    return {
        "createdAt": iso_z(t.created_at),
        "createdBy": subject(view.subjects, t.created_by),
        "description": t.description,
        "id": t.id,
        "isIdpManaged": t.is_idp_managed,
        "name": t.name,
        "organizationId": t.organization_id,
        "rolesCount": _roles_count(view.roles),
        "updatedAt": iso_z(t.updated_at),
        "updatedBy": subject(view.subjects, t.updated_by),
    } | render.role_set(view.roles)


def teams_page(page: Page[TeamView]) -> JSON:
    return {
        "limit": page.limit,
        "offset": page.offset,
        "teams": [team(v) for v in page.items],
        "totalCount": page.total,
    }


def team_members_page(page: Page[TeamMemberView]) -> JSON:
    return {
        "limit": page.limit,
        "offset": page.offset,
        "teamMembers": [
            {
                "avatarUrl": m.user.avatar_url,
                "createdAt": iso_z(m.added_at),
                "fullName": m.user.full_name,
                "userId": m.user.id,
                "username": m.user.username,
            }
            for m in page.items
        ],
        "totalCount": page.total,
    }


def team_roles(roles: RoleSet) -> JSON:
    return render.role_set(roles)
