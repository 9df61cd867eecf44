"""ECE bodies as plain dicts, and the parsing of ECE's user body (a JSON merge patch)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenantry.clock import utcnow
from tenantry.errors import FieldError, Invalid
from tenantry.faces.ece.dialect import EceUserPatch, EceUserView, Realm, permissions, realm_of
from tenantry.faces.ece.operations import OPERATIONS

_RESTRICTED_SECURITY = ("permissions", "elevated_permissions", "security_realm")


def ts(moment: datetime) -> str:
    """ECE's timestamps: ISO 8601 with milliseconds and an explicit UTC offset."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def elevated(until: datetime | None) -> dict[str, Any]:
    if until is not None and until > utcnow():
        return {"enabled": True, "expires_at": ts(until)}
    return {"enabled": False}


def user(view: EceUserView) -> dict[str, Any]:
    u = view.user
    realm = realm_of(u)
    metadata: dict[str, Any] = {"created_at": ts(u.created_at), "updated_at": ts(u.updated_at)}
    for key, value in (("created_by", u.created_by), ("updated_by", u.updated_by)):
        if value:
            metadata[key] = value
    if u.first_login_at is not None:
        metadata["first_login_at"] = ts(u.first_login_at)
    if u.last_login_at is not None:
        metadata["last_login_at"] = ts(u.last_login_at)
    body: dict[str, Any] = {
        "user_name": u.username,
        "security": {
            "roles": view.ece_roles,
            "permissions": permissions(view, OPERATIONS),
            "elevated_permissions": elevated(view.caller.elevated_until if view.caller else None),
            "enabled": u.enabled,
            "security_realm": {"type": realm.type, "id": realm.id},
        },
        "metadata": metadata,
        "builtin": u.builtin,
    }
    if u.full_name:
        body["full_name"] = u.full_name
    if u.email:
        body["email"] = u.email
    return body


def _bad(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", [FieldError(field, "invalid", message)])


def _text(body: dict[str, Any], key: str, field: str, reset: set[str]) -> str | None:
    value = body.get(key)
    if value is None:
        if key in body:
            reset.add(key)
        return None
    if not isinstance(value, str) or len(value) > 320:
        raise _bad(field, "must be a string of at most 320 characters")
    return value


def user_patch(body: Any) -> EceUserPatch:
    """ECE's User body as a merge patch: an absent field stays, null resets it."""
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    reset: set[str] = set()
    restricted = [k for k in ("metadata", "builtin") if k in body]
    user_name = body.get("user_name")
    if user_name is not None and not isinstance(user_name, str):
        raise _bad("user_name", "must be a string")
    full_name = _text(body, "full_name", "full_name", reset)
    email = _text(body, "email", "email", reset)
    security = body.get("security")
    roles: list[str] | None = None
    password: str | None = None
    enabled: bool | None = None
    if security is not None:
        if not isinstance(security, dict):
            raise _bad("security", "must be an object")
        restricted += [f"security.{k}" for k in _RESTRICTED_SECURITY if k in security]
        raw_roles = security.get("roles")
        if raw_roles is None:
            if "roles" in security:
                reset.add("roles")
        elif not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
            raise _bad("security.roles", "must be a list of strings")
        else:
            roles = list(raw_roles)
        raw_password = security.get("password")
        if raw_password is not None and not isinstance(raw_password, str):
            raise _bad("security.password", "must be a string")
        password = raw_password
        raw_enabled = security.get("enabled")
        if raw_enabled is not None and not isinstance(raw_enabled, bool):
            raise _bad("security.enabled", "must be a boolean")
        enabled = raw_enabled
    return EceUserPatch(
        user_name=user_name,
        full_name=full_name,
        email=email,
        roles=roles,
        password=password,
        enabled=enabled,
        reset=frozenset(reset),
        restricted=tuple(restricted),
    )


def realms(found: list[Realm]) -> dict[str, Any]:
    return {
        "realms": [
            {
                "id": r.id,
                "name": "Native users" if r.type == "native" else r.id,
                "type": r.type,
                "enabled": True,
                "order": order,
                "urls": [],
            }
            for order, r in enumerate(found)
        ]
    }
