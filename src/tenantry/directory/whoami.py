"""The caller and everything their own view shows, loaded at once: the cold path of the "who am
I" GETs (faces/hot.py), whose answers are otherwise cached.

A personal or session token on PostgreSQL takes one statement: the token, its user, their
memberships, teams, role bindings (their own and their teams'), the custom roles those name,
pending invites, feature flags and live session count, as one row of plain values, prepared
once per connection and sent outside any ORM session (db/engine.Database.fetchrow). Anything
else (SQLite, an API token acting as itself) takes the ordinary loaders, in one read
transaction. Both give the same Principal and the same CallerView; what each face shows of
them is the face's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import configure_mappers, make_transient_to_detached

from tenantry.authz.catalogue import ROLES
from tenantry.authz.engine import Grant, Grants
from tenantry.authz.scopes import SYSTEM_SCOPE, Scope, ScopeType
from tenantry.clock import utcnow
from tenantry.db.engine import Database
from tenantry.db.models import Invite, Token, User
from tenantry.directory import accounts, me
from tenantry.errors import Unauthenticated
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Principal, authenticate, user_can_sign_in
from tenantry.identity.sessions import active_session_count
from tenantry.identity.tokens import MAX_SECRET_LENGTH, TokenKind, digest, is_live

REFUSED = "invalid or expired token"


@dataclass(frozen=True, slots=True)
class CallerView:
    """What the faces' own views show beyond the principal (none for an API token)."""

    invites: tuple[Invite, ...] = ()
    feature_flags: tuple[tuple[str, bool], ...] = ()
    system_roles: tuple[str, ...] = ()
    active_sessions: int = 0


async def load(
    database: Database, secret: str, policy: SecurityPolicy
) -> tuple[Principal, CallerView]:
    """The caller of `secret` and their view; Unauthenticated exactly as `authenticate`."""
    if len(secret) > MAX_SECRET_LENGTH:
        raise Unauthenticated(REFUSED)
    if not database.settings.is_sqlite:
        now = utcnow()
        row = await database.fetchrow(_SQL, digest(secret), now)
        if row is not None or not await _is_api_token(database, secret):
            return _from_row(row, now, policy)
    return await _load_slowly(database, secret, policy)


async def authenticate_to_write(db: AsyncSession, secret: str, policy: SecurityPolicy) -> Principal:
    """The caller of a writing request, inside its own transaction: what `authenticate` gives,
    in one statement on PostgreSQL for personal and session tokens (the token, the user and
    their grants), the token and user then belonging to `db` as if it had loaded them. Under
    read load each statement waits a turn of the event loop behind the reads: three fewer
    are ~15-30 ms less per write (bench/mix.py)."""
    if len(secret) > MAX_SECRET_LENGTH:
        raise Unauthenticated(REFUSED)
    if db.get_bind().dialect.name == "postgresql":
        now = utcnow()
        found = (await db.execute(_WRITER_SQL, {"digest": digest(secret)})).first()
        if found is not None:
            principal = _principal(tuple(found), found._mapping, now, policy)
            principal.user = await db.merge(principal.user, load=False)
            principal.token = await db.merge(principal.token, load=False)
            return principal
    return await authenticate(db, secret, policy)  # SQLite, an API token, or refused


async def _is_api_token(database: Database, secret: str) -> bool:
    """Whether the one statement found nothing because the token acts as itself (which it
    leaves to the ordinary loaders); a second look only for such rare callers."""
    found = await database.fetchrow(_KIND_SQL, digest(secret))
    return found is not None and found["kind"] == TokenKind.API.value


async def _load_slowly(
    database: Database, secret: str, policy: SecurityPolicy
) -> tuple[Principal, CallerView]:
    async with database.transaction(write=False) as db:
        principal = await authenticate(db, secret, policy)
        view = await view_of(db, principal)
        db.expunge_all()  # detached: shared by later requests through the cache
    return principal, view


async def view_of(db: AsyncSession, principal: Principal) -> CallerView:
    """The ordinary loaders' CallerView of an authenticated caller (the faces' own routes)."""
    user, token = principal.user, principal.token
    if user is None:  # an API token acting as itself
        return CallerView()
    via_session = token is not None and token.kind == TokenKind.SESSION.value
    return CallerView(
        tuple(await me.pending_invites_for(db, user)),
        tuple(await me.feature_flags_for(db, user.id)),
        (await accounts.system_roles_of(db, [user.id])).get(user.id, ()),
        await active_session_count(db, user.id) if via_session else 0,
    )


# --- the one statement ---------------------------------------------------------------------

configure_mappers()  # _detached builds objects before any query would have configured them
_TOKEN_COLUMNS = [c.name for c in Token.__table__.columns]
_USER_COLUMNS = [c.name for c in User.__table__.columns]
_USERS_AT = len(_TOKEN_COLUMNS)  # where the row's user columns begin
_LISTS_AT = _USERS_AT + len(_USER_COLUMNS)  # and where they end
_MINE = """(b.subject_type = 'user' AND b.subject_id = t.user_id)
            OR (b.subject_type = 'team' AND b.subject_id IN
                (SELECT tm.team_id FROM team_members tm WHERE tm.user_id = t.user_id))"""
# Built once from the models' own column names (no input reaches it): S608 does not apply.
_PRINCIPAL = f"""
       {", ".join(f"t.{c} AS t_{c}" for c in _TOKEN_COLUMNS)},
       {", ".join(f"u.{c} AS u_{c}" for c in _USER_COLUMNS)},
       (SELECT json_agg(json_build_array(m.organization_id, m.role) ORDER BY m.organization_id)
          FROM memberships m WHERE m.user_id = t.user_id) AS memberships,
       (SELECT json_agg(tm.team_id) FROM team_members tm WHERE tm.user_id = t.user_id) AS teams,
       (SELECT json_agg(json_build_array(b.role, b.scope_type, b.organization_id,
                b.workspace_id, b.deployment_id, b.dag_id, b.dag_tag, b.subject_type,
                b.subject_id) ORDER BY b.id)
          FROM role_bindings b WHERE {_MINE}) AS bindings,
       (SELECT json_agg(json_build_array(c.organization_id, c.name, c.permissions))
          FROM custom_roles c
         WHERE (c.organization_id, c.name) IN (
               SELECT b.organization_id, b.role FROM role_bindings b WHERE {_MINE}
               UNION ALL
               SELECT m.organization_id, m.role FROM memberships m WHERE m.user_id = t.user_id
         )) AS custom_roles"""  # noqa: S608
_FROM = "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = $1 AND t.kind <> 'api'"
_SQL = f"""
SELECT {_PRINCIPAL},
       (SELECT json_agg(json_build_array(i.id, i.organization_id, i.expires_at, i.role,
                i.invitee_email, i.inviter_id, i.created_at) ORDER BY i.created_at, i.id)
          FROM invites i
         WHERE i.user_id = t.user_id AND i.accepted_at IS NULL AND i.expires_at > $2) AS invites,
       (SELECT json_agg(json_build_array(f.key, coalesce(uf.value, f.default_value))
                ORDER BY f.key)
          FROM feature_flags f
          LEFT JOIN user_feature_flags uf ON uf.key = f.key AND uf.user_id = t.user_id
       ) AS flags,
       CASE WHEN t.kind = 'session' THEN
         (SELECT count(*) FROM tokens s
           WHERE s.user_id = t.user_id AND s.kind = 'session' AND s.revoked_at IS NULL
             AND s.expires_at > $2)
       END AS sessions
{_FROM}"""  # noqa: S608
# A writer's: the principal alone, through its session's connection (SQLAlchemy's parameters).
_WRITER_SQL = text(f"SELECT {_PRINCIPAL} {_FROM.replace('$1', ':digest')}")
_KIND_SQL = "SELECT kind FROM tokens WHERE digest = $1"


def _from_row(row: Any, now: datetime, policy: SecurityPolicy) -> tuple[Principal, CallerView]:
    if row is None:
        raise Unauthenticated(REFUSED)
    principal = _principal(tuple(row), row, now, policy)
    user_id = principal.user.id if principal.user is not None else ""
    system = [
        g.role
        for g in principal.grants.grants
        if g.subject_type == "user" and g.scope.key == SYSTEM_SCOPE.key
    ]
    view = CallerView(
        tuple(_invite(user_id, item) for item in _json(row["invites"])),
        tuple((key, bool(value)) for key, value in _json(row["flags"])),
        accounts.ordered_roles(system),
        int(row["sessions"] or 0),
    )
    return principal, view


def _principal(
    values: tuple[Any, ...], row: Any, now: datetime, policy: SecurityPolicy
) -> Principal:
    """The Principal of a row of _PRINCIPAL's columns (`row`: them by name)."""
    token = _detached(Token, zip(_TOKEN_COLUMNS, values[:_USERS_AT], strict=True))
    user = _detached(User, zip(_USER_COLUMNS, values[_USERS_AT:_LISTS_AT], strict=True))
    user.__dict__["attributes"] = _json_value(user.attributes) or {}  # JSONB arrives as text
    if not is_live(token, now) or not user_can_sign_in(user):
        raise Unauthenticated(REFUSED)
    return Principal(grants=_grants(row, user.id), user=user, token=token, policy=policy)


def _grants(row: Any, user_id: str) -> Grants:
    """As authz.engine.load_user_grants builds them, in the same order."""
    found = [
        Grant(
            role, Scope(ScopeType.ORGANIZATION, organization_id=org), "user", user_id, "membership"
        )
        for org, role in _json(row["memberships"])
    ]
    for role, kind, org, ws, dep, dag, tag, subject_type, subject_id in _json(row["bindings"]):
        scope = Scope(
            ScopeType(kind),
            organization_id=org,
            workspace_id=ws,
            deployment_id=dep,
            dag_id=dag,
            dag_tag=tag,
        )
        found.append(Grant(role, scope, subject_type, subject_id, "binding"))
    custom = {
        (org, name): frozenset(_json_value(perms))
        for org, name, perms in _json(row["custom_roles"])
        if name not in ROLES
    }
    return Grants(found, custom, _json(row["teams"]))


def _invite(user_id: str, item: list[Any]) -> Invite:
    invite_id, org, expires_at, role, email, inviter, created_at = item
    invite: Invite = _detached(
        Invite,
        {
            "id": invite_id,
            "organization_id": org,
            "user_id": user_id,
            "expires_at": _timestamp(expires_at),
            "role": role,
            "invitee_email": email,
            "inviter_id": inviter,
            "created_at": _timestamp(created_at),
            "accepted_at": None,
        }.items(),
    )
    return invite


def _detached(model: Any, values: Iterable[tuple[str, Any]]) -> Any:
    """An ORM object holding `values` as if a session had loaded and then let it go: what
    the ordinary loaders hand over, without a session's bookkeeping."""
    obj = model.__mapper__.class_manager.new_instance()
    into = obj.__dict__
    for key, value in values:
        # asyncpg gives timestamptz in UTC already; UTCDateTime's own rule otherwise.
        if isinstance(value, datetime) and value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        into[key] = value
    make_transient_to_detached(obj)
    return obj


def _json(value: Any) -> Any:
    """A json_agg: text from asyncpg itself, decoded already through SQLAlchemy's dialect."""
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str) else value


def _json_value(value: Any) -> Any:
    """A JSON column inside json_build_array arrives as JSON already; a text one as a string."""
    return orjson.loads(value) if isinstance(value, str) else value


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
