"""Permission checks on behalf of a subject: the use case behind POST /tenantry/v1/check."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz import catalogue, engine, scopes
from tenantry.authz.engine import Grant, Grants, Holder, load_token_grants, load_user_grants
from tenantry.authz.scopes import SYSTEM_SCOPE, Scope
from tenantry.db.models import Token, User
from tenantry.db.paging import cursor_text, invalid_cursor, opaque_cursor
from tenantry.errors import FieldError, Invalid, NotFound
from tenantry.identity.principals import Principal

WHO_CAN_LIMIT = 1000  # holders a page, by default
WHO_CAN_MAX_LIMIT = 10_000


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    granted_by: list[Grant]


@dataclass(frozen=True)
class HolderPage:
    holders: list[Holder]
    next_cursor: str | None  # None on the last page


def _encode_cursor(holder: Holder) -> str:
    """Opaque to clients: the last holder of the page, which the next page starts after."""
    return opaque_cursor(json.dumps(list(holder)))  # ASCII: json escapes the rest


def _decode_cursor(cursor: str) -> Holder:
    text = cursor_text(cursor)
    try:
        fields = None if text is None else json.loads(text)
    except ValueError:
        fields = None
    if not (
        isinstance(fields, list) and len(fields) == 4 and all(isinstance(f, str) for f in fields)
    ):
        raise invalid_cursor()
    return Holder(*fields)


async def _grants_of(db: AsyncSession, subject_type: str, subject_id: str) -> Grants:
    if subject_type == "user":
        if await db.scalar(select(User.id).where(User.id == subject_id)) is None:
            raise NotFound("subject not found")
        return await load_user_grants(db, subject_id)
    if subject_type == "token":
        if await db.get(Token, subject_id) is None:
            raise NotFound("subject not found")
        return await load_token_grants(db, subject_id)
    raise Invalid("unknown subject type", [FieldError("subject.type", "invalid", "user or token")])


def _may_inspect(actor: Principal, subject_id: str, scope: Scope) -> bool:
    if subject_id == actor.actor_id or actor.can("system.permissions.check", SYSTEM_SCOPE):
        return True
    return scope.organization_id is not None and actor.can(
        "organization.users.roles.update", scopes.organization(scope.organization_id)
    )


async def check(
    db: AsyncSession,
    actor: Principal,
    subject_type: str,
    subject_id: str,
    permission: str,
    scope: Scope,
    dag_tags: tuple[str, ...] = (),
) -> CheckResult:
    """Callers may always ask about themselves; about others with system or owner rights."""
    if permission not in catalogue.ALL_PERMISSIONS:
        raise Invalid(
            "unknown permission", [FieldError("permission", "invalid", "not in catalogue")]
        )
    if not _may_inspect(actor, subject_id, scope):
        raise NotFound("subject not found")
    grants = await _grants_of(db, subject_type, subject_id)
    granted = grants.explain(permission, scope, dag_tags)
    return CheckResult(bool(granted), granted)


async def who_can(
    db: AsyncSession,
    actor: Principal,
    permission: str,
    scope: Scope,
    *,
    cursor: str | None = None,
    limit: int = WHO_CAN_LIMIT,
) -> HolderPage:
    """Subjects holding `permission` at `scope`, a page at a time (keyset: `cursor` is the
    previous page's `next_cursor`); for system auditors and the scope's owners."""
    if permission not in catalogue.ALL_PERMISSIONS:
        raise Invalid(
            "unknown permission", [FieldError("permission", "invalid", "not in catalogue")]
        )
    if not 1 <= limit <= WHO_CAN_MAX_LIMIT:
        message = f"between 1 and {WHO_CAN_MAX_LIMIT}"
        raise Invalid("invalid limit", [FieldError("limit", "out_of_range", message)])
    after = _decode_cursor(cursor) if cursor is not None else None
    if not _may_inspect(actor, "", scope):
        raise NotFound("scope not found")
    found = await engine.who_can(db, permission, scope, after=after, limit=limit + 1)
    more = len(found) > limit
    return HolderPage(found[:limit], _encode_cursor(found[limit - 1]) if more else None)


async def effective(
    db: AsyncSession, actor: Principal, subject_type: str, subject_id: str
) -> list[tuple[str, Scope]]:
    """Every (permission, scope) a subject holds. Yourself, or with system rights."""
    if subject_id != actor.actor_id and not actor.can("system.permissions.check", SYSTEM_SCOPE):
        raise NotFound("subject not found")
    return (await _grants_of(db, subject_type, subject_id)).effective()
