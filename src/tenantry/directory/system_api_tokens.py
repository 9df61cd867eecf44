"""System API tokens: instance-wide credentials that are no user and hold one SYSTEM role
(what Unleash calls an admin API token, its `*:*.<secret>` of INIT_ADMIN_API_TOKENS).

A system API token is a row of `tokens` with kind `api`, no user and no organization
(`user_id` and `organization_id` NULL) and `scope_type` SYSTEM (identity.tokens.
is_system_api_token); its role is a role binding of subject_type "token" at SYSTEM scope, so the
permission engine serves it like any other subject. No creator caps it: it is the instance's
credential, not a user's, and keeps its role when whoever made it loses theirs (as Unleash's
admin tokens do); revoking it is how it ends.

- create: `system.apiTokens.create` at SYSTEM (SYSTEM_ADMIN only), by a signed-in user or the
  CLI, never by another API token (a leaked token must not mint its own successors);
  elevation when the instance demands it (every SYSTEM role is strong); the caller must hold
  every permission of the role given (a token never exceeds who grants it). The name is 1..256
  printable characters, the expiry 1..3650 days or none. The secret (`tnt_` + 256 random
  bits, stored only as its SHA-256 digest) is returned once. Audited `system.api_token.create`.
- list / get: `system.apiTokens.list` / `get`; the tokens not revoked, oldest first; never a
  secret. An organization's API tokens are not system tokens and are never listed here (nor
  system tokens in an organization's list).
- revoke: `system.apiTokens.delete`; the token is marked revoked and its role binding goes.
  Audited `system.api_token.revoke`. Refused from the next request on, on every worker: a
  cached principal of the token depends on its token scope, which the revocation writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.catalogue import ROLE_PERMISSIONS, SYSTEM_ROLES
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.db.engine import scoped
from tenantry.db.generation import token_scope
from tenantry.db.models import RoleBinding, Token
from tenantry.errors import FieldError, Forbidden, Invalid, NotFound
from tenantry.identity import tokens
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import SYSTEM_SCOPE_TYPE, Minted, TokenKind, is_system_api_token

MAX_NAME = 256
MAX_DAYS = 3650
SUBJECT = "token"


@dataclass(frozen=True)
class SystemApiToken:
    token: Token
    role: str
    secret: str | None = None  # only right after create


def _check_role(role: str) -> str:
    if role not in SYSTEM_ROLES:
        raise Invalid(
            "invalid system role",
            [FieldError("role", "invalid", f"one of {', '.join(SYSTEM_ROLES)}")],
        )
    return role


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Invalid(
            "invalid token name",
            [FieldError("name", "invalid", f"1 to {MAX_NAME} printable characters")],
        )
    return name


def _check_days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise Invalid(
            "invalid token expiry",
            [FieldError("expiresInDays", "out_of_range", f"between 1 and {MAX_DAYS} days")],
        )
    return days


def _require_maker(actor: Principal, role: str) -> None:
    """403 unless a user or the CLI with `system.apiTokens.create` and every permission of
    `role`; elevation (when demanded) for the strong grant."""
    actor.require("system.apiTokens.create", SYSTEM_SCOPE)
    if actor.user is None and not actor.system:
        raise Forbidden("a system API token is made by a signed-in user or the CLI")
    missing = sorted(p for p in ROLE_PERMISSIONS[role] if not actor.can(p, SYSTEM_SCOPE))
    if missing:
        raise Forbidden(
            f"cannot give a token {role}: the caller lacks {missing[0]} "
            "(a token never exceeds who grants it)"
        )
    actor.require_elevation_to_grant([role])


async def _roles_of(db: AsyncSession, token_ids: list[str]) -> dict[str, str]:
    if not token_ids:
        return {}
    rows = await db.execute(
        select(RoleBinding.subject_id, RoleBinding.role).where(
            RoleBinding.subject_type == SUBJECT,
            RoleBinding.subject_id.in_(token_ids),
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
        )
    )
    return dict(rows.all())


async def _load(db: AsyncSession, token_id: str) -> Token:
    token = await db.get(Token, token_id)
    if token is None or not is_system_api_token(token) or token.revoked_at is not None:
        raise NotFound("system API token not found")
    return token


async def _mint(
    db: AsyncSession, actor: Principal, name: str, role: str, days: int | None
) -> Minted:
    minted = await tokens.mint(
        db,
        kind=TokenKind.API,
        user_id=None,
        name=name,
        expires_at=tokens.expiry_from_days(days),
        created_by=actor.actor_id,
        flush=False,
    )
    minted.token.scope_type = SYSTEM_SCOPE_TYPE
    minted.token.expiry_days = days
    db.add(
        RoleBinding(
            subject_type=SUBJECT,
            subject_id=minted.token.id,
            role=role,
            scope_type=SYSTEM_SCOPE.type.value,
            scope_key=SYSTEM_SCOPE.key,
            created_by=actor.actor_id,
        )
    )
    await db.flush()
    return minted


async def create_system_api_token(
    db: AsyncSession, actor: Principal, *, role: str, name: str = "", expires_in_days: int | None
) -> SystemApiToken:
    """A new system API token holding `role`; the result carries the secret, shown once."""
    role = _check_role(role)
    _require_maker(actor, role)
    name = _check_name(name or role.lower())
    days = _check_days(expires_in_days)
    minted = await _mint(db, actor, name, role, days)
    await record(
        db,
        actor,
        "system.api_token.create",
        target_type="token",
        target_id=minted.token.id,
        details={"name": name, "role": role, "expiresInDays": days},
    )
    return SystemApiToken(minted.token, role, minted.secret)


async def list_system_api_tokens(db: AsyncSession, actor: Principal) -> list[SystemApiToken]:
    actor.require("system.apiTokens.list", SYSTEM_SCOPE)
    rows = list(
        await db.scalars(
            select(Token)
            .where(
                Token.kind == TokenKind.API.value,
                Token.user_id.is_(None),
                Token.organization_id.is_(None),
                Token.scope_type == SYSTEM_SCOPE_TYPE,
                Token.revoked_at.is_(None),
            )
            .order_by(Token.created_at, Token.id)
        )
    )
    roles = await _roles_of(db, [t.id for t in rows])
    return [SystemApiToken(t, roles.get(t.id, "")) for t in rows]


async def get_system_api_token(db: AsyncSession, actor: Principal, token_id: str) -> SystemApiToken:
    actor.require("system.apiTokens.get", SYSTEM_SCOPE)
    token = await _load(db, token_id)
    return SystemApiToken(token, (await _roles_of(db, [token.id])).get(token.id, ""))


async def revoke_system_api_token(db: AsyncSession, actor: Principal, token_id: str) -> None:
    """Refused from the next request on; its role binding goes with it."""
    actor.require("system.apiTokens.delete", SYSTEM_SCOPE)
    token = await _load(db, token_id)
    role = (await _roles_of(db, [token.id])).get(token.id, "")
    await db.execute(
        delete(RoleBinding)
        .where(RoleBinding.subject_type == SUBJECT, RoleBinding.subject_id == token.id)
        .execution_options(**scoped(token_scope(token.id)))
    )
    await tokens.revoke(db, token.id, by=actor.actor_id)
    await record(
        db,
        actor,
        "system.api_token.revoke",
        target_type="token",
        target_id=token.id,
        details={"name": token.name, "role": role},
    )
