"""Unleash's JSON shapes (userSchema, meSchema, profileSchema, ...) from Tenantry records."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from tenantry.db.models import Team, User
from tenantry.faces.unleash import dialect as unleash_me


def ts(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def image_url(user: User) -> str:
    if user.avatar_url:
        return user.avatar_url
    key = (user.email or user.username).strip().lower()
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"https://gravatar.com/avatar/{digest}?s=42&d=retro&r=g"


def user_core(user: User) -> dict[str, Any]:
    """The fields every user rendering starts with, in Unleash's order."""
    body: dict[str, Any] = {"accountType": user.account_type, "id": user.seq}
    if user.full_name:
        body["name"] = user.full_name
    if user.email is None or user.username.lower() != user.email.lower():
        body["username"] = user.username
    if user.email:
        body["email"] = user.email
    body.update(
        imageUrl=image_url(user),
        seenAt=ts(user.seen_at),
        loginAttempts=user.login_attempts,
        createdAt=ts(user.created_at),
    )
    return body


def user_full(user: User) -> dict[str, Any]:
    return {
        **user_core(user),
        "scimId": user.scim_id,
        "seatType": None,
        "companyRole": None,
        "productUpdatesEmailConsent": None,
    }


def user_base(user: User) -> dict[str, Any]:
    """A user in GET /user-admin/access: Unleash's account service's id, name, username,
    e-mail and account type (the empty ones left out)."""
    core = user_core(user)
    body: dict[str, Any] = {"id": user.seq}
    for key in ("name", "username", "email"):
        if key in core:
            body[key] = core[key]
    body["accountType"] = user.account_type
    return body


def inactive_user(user: User, token_used: datetime | None) -> dict[str, Any]:
    """inactiveUserSchema: every key, null when empty (Unleash's store selects the columns)."""
    core = user_core(user)
    return {
        "id": user.seq,
        "name": core.get("name"),
        "email": core.get("email"),
        "username": core.get("username"),
        "seenAt": ts(user.seen_at),
        "createdAt": ts(user.created_at),
        "patSeenAt": ts(token_used),
    }


def user_found(user: User) -> dict[str, Any]:
    """A search result: Unleash's store selects neither loginAttempts nor createdAt."""
    body = user_full(user)
    del body["loginAttempts"], body["createdAt"]
    return body


def me(view: unleash_me.Me, presented: str | None) -> dict[str, Any]:
    user: dict[str, Any]
    if view.user is None:
        admin = view.permissions == [{"permission": "ADMIN"}]
        user = {
            "username": view.token.name if view.token is not None else "token",
            "permissions": [p["permission"] for p in view.permissions],
            "environment": "*",
            "type": "admin" if admin else "client",
            "secret": presented,
            "projects": ["*"],
            "internalAdminTokenUserId": -42,
        }
    elif view.via_session:
        user = {
            **user_full(view.user),
            "deletedSessions": 0,
            "activeSessions": view.active_sessions,
        }
    else:
        user = user_core(view.user)
    return {
        "user": user,
        "permissions": view.permissions,
        "feedback": view.feedback,
        "splash": view.splash,
    }


def group(team: Team) -> dict[str, Any]:
    """groupItemSchema: an Unleash group is a Tenantry team (no SSO mappings, no root role of
    its own; SCIM-managed teams carry no SCIM id in Tenantry)."""
    return {
        "id": unleash_me.group_number(team),
        "name": team.name,
        "description": team.description or None,
        "mappingsSSO": [],
        "rootRole": None,
        "scimId": None,
    }


def profile(view: unleash_me.Profile) -> dict[str, Any]:
    return {
        "projects": view.projects,
        "groups": [group(t) for t in view.groups],
        "rootRole": unleash_me.root_role_body(view.root_role),
        "subscriptions": ["productivity-report"],
        "features": [],
        "canChangePassword": view.can_change_password,
    }


def root_roles() -> list[dict[str, Any]]:
    return [unleash_me.root_role_body(role) for role in unleash_me.ROOT_ROLES]


def root_role(role: int) -> dict[str, Any]:
    return unleash_me.root_role_body(role)


def role_with_project(body: dict[str, Any], project: str) -> dict[str, Any]:
    """A role as Unleash lists a user's role bindings (GET /user/roles): with the project of
    the binding, which for the root role is Unleash's `default` project."""
    return {**body, "project": project}
