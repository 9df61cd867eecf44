"""Permission checks on behalf of a subject: the use cases behind POST /tenantry/v1/check and
/who-can. Neither is an existence oracle: a scope or subject of another tenant answers exactly
as a made-up id does, and what is listed is only what the caller may see."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz import catalogue, engine, scopes
from tenantry.authz.engine import Grant, Grants, Holder, load_token_grants, load_user_grants
from tenantry.authz.scopes import SYSTEM_SCOPE, Scope, ScopeType
from tenantry.db.models import Membership, Token, User
from tenantry.db.paging import cursor_text, invalid_cursor, opaque_cursor
from tenantry.directory import organizations, tree
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


@dataclass(frozen=True)
class ScopeRef:
    """A scope as a request names it: a type and the id of its object (a DAG or DAG_TAG
    scope: its deployment's, with the dagId or dagTag)."""

    type: ScopeType
    id: str | None = None
    dag_id: str | None = None
    dag_tag: str | None = None


async def _scope(db: AsyncSession, actor: Principal, ref: ScopeRef) -> Scope:
    """The scope, or the 404 of a missing one when it lies in another tenant's organization
    (no existence oracle: a real foreign id answers as a made-up one)."""
    return await tree.resolve(
        db,
        ref.type,
        ref.id,
        dag_id=ref.dag_id,
        dag_tag=ref.dag_tag,
        visible=functools.partial(organizations.can_reach, actor),
    )


def _system_rights(actor: Principal) -> bool:
    return actor.can("system.permissions.check", SYSTEM_SCOPE)


def _inspected_within(actor: Principal, subject_id: str, scope: Scope) -> str:
    """Whose grants the caller may inspect at `scope`: "" for anyone's (themselves, or with
    system rights), an organization id for its members' and tokens' only (its owners);
    NotFound otherwise."""
    if subject_id == actor.actor_id or _system_rights(actor):
        return ""
    org_id = scope.organization_id
    if org_id is not None and actor.can(
        "organization.users.roles.update", scopes.organization(org_id)
    ):
        return org_id
    raise NotFound("subject not found")


async def _grants_of(
    db: AsyncSession, subject_type: str, subject_id: str, within: str = ""
) -> Grants:
    """The subject's grants; 404 when it does not exist or (`within` an organization) is
    neither a member nor a token of it, so that another tenant's user reads as made up."""
    if subject_type == "user":
        query = select(User.id).where(User.id == subject_id)
        if within:
            query = select(Membership.user_id).where(
                Membership.user_id == subject_id, Membership.organization_id == within
            )
        if await db.scalar(query) is None:
            raise NotFound("subject not found")
        return await load_user_grants(db, subject_id)
    if subject_type == "token":
        token = await db.get(Token, subject_id)
        if token is None or (within and token.organization_id != within):
            raise NotFound("subject not found")
        return await load_token_grants(db, subject_id)
    raise Invalid("unknown subject type", [FieldError("subject.type", "invalid", "user or token")])


def _may_inspect(actor: Principal, subject_id: str, scope: Scope) -> bool:
    if subject_id == actor.actor_id or _system_rights(actor):
        return True
    return scope.organization_id is not None and actor.can(
        "organization.users.roles.update", scopes.organization(scope.organization_id)
    )


def _known_permission(permission: str) -> None:
    if permission not in catalogue.ALL_PERMISSIONS:
        raise Invalid(
            "unknown permission", [FieldError("permission", "invalid", "not in catalogue")]
        )


async def check(
    db: AsyncSession,
    actor: Principal,
    subject_type: str,
    subject_id: str,
    permission: str,
    where: ScopeRef,
    dag_tags: tuple[str, ...] = (),
) -> CheckResult:
    """Callers may always ask about themselves; about others with system rights, or as an
    owner of the scope's organization about its members and tokens. A scope or subject of
    another tenant answers as a made-up one. `granted_by` lists grants at SYSTEM scope only
    to callers with system rights or about themselves (`allowed` counts them all)."""
    _known_permission(permission)
    scope = await _scope(db, actor, where)
    within = _inspected_within(actor, subject_id, scope)
    grants = await _grants_of(db, subject_type, subject_id, within)
    granted = grants.explain(permission, scope, dag_tags)
    shown = granted if not within else [g for g in granted if g.scope.type is not ScopeType.SYSTEM]
    return CheckResult(bool(granted), shown)


async def who_can(
    db: AsyncSession,
    actor: Principal,
    permission: str,
    where: ScopeRef,
    *,
    cursor: str | None = None,
    limit: int = WHO_CAN_LIMIT,
) -> HolderPage:
    """Subjects holding `permission` at `scope`, a page at a time (keyset: `cursor` is the
    previous page's `next_cursor`); for system auditors and the scope's owners. Holders by a
    grant at SYSTEM scope (the instance's administrators) are listed to system auditors only."""
    _known_permission(permission)
    if not 1 <= limit <= WHO_CAN_MAX_LIMIT:
        message = f"between 1 and {WHO_CAN_MAX_LIMIT}"
        raise Invalid("invalid limit", [FieldError("limit", "out_of_range", message)])
    after = _decode_cursor(cursor) if cursor is not None else None
    scope = await _scope(db, actor, where)
    if not _may_inspect(actor, "", scope):
        raise NotFound("scope not found")
    found = await engine.who_can(
        db, permission, scope, after=after, limit=limit + 1, system=_system_rights(actor)
    )
    more = len(found) > limit
    return HolderPage(found[:limit], _encode_cursor(found[limit - 1]) if more else None)


async def effective(
    db: AsyncSession, actor: Principal, subject_type: str, subject_id: str
) -> list[tuple[str, Scope]]:
    """Every (permission, scope) a subject holds. Yourself, or with system rights."""
    if subject_id != actor.actor_id and not _system_rights(actor):
        raise NotFound("subject not found")
    return (await _grants_of(db, subject_type, subject_id)).effective()
