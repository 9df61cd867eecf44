"""Signing in and out: password login, session tokens, lockout, elevation.

A refused password raises `SignInRefused` (or `ElevationRefused`) with `keeps_writes`: the
request's transaction commits the failure's count and its audit event, then each face's error
table renders the refusal. Every password path (a session sign-in, HTTP Basic, elevation)
counts and audits its failures through `_refuse`, with the same statements whether or not the
account exists, so that neither the answer nor its timing tells the two apart (issue 14,
finding 11; tests/rules/test_sign_in_failures.py counts the statements).

`login` reads and writes with prepared Core statements, not ORM objects: its event-loop time
is what other requests wait behind while sign-ins pour in (issue 5's sign-in target; the
measurements are in docs/performance.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import log as audit
from tenantry.audit.log import Actor, event_row, record
from tenantry.authz.engine import load_user_grants
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import utcnow
from tenantry.db.base import UTCDateTime
from tenantry.db.engine import UNTRACKED, user_notice, wrote_for_user
from tenantry.db.models import Token, User
from tenantry.errors import (
    ElevationRefused,
    FieldError,
    Invalid,
    NotFound,
    RateLimited,
    SignInRefused,
)
from tenantry.identity import lookup, passwords, tokens
from tenantry.identity.names import username_key
from tenantry.identity.passwords import Hasher
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Account, Principal, anonymous, user_can_sign_in
from tenantry.identity.ratelimit import RateLimiter
from tenantry.identity.tokens import Minted, TokenKind, mint_session, revoke

WINDOW_SECONDS = 60
REFUSED = "invalid username or password"
ELEVATION_REFUSED = "the password is incorrect"
# (audit action, method) of each way a password is refused
_LOGIN_FAILED = ("auth.login.failure", "login")
_BASIC_FAILED = ("auth.login.failure", "basic")
_ELEVATE_FAILED = ("auth.elevate.failure", "elevate")


@dataclass(frozen=True)
class Limits:
    limiter: RateLimiter
    per_ip: int
    per_account: int


@dataclass(frozen=True)
class LoginOutcome:
    minted: Minted  # a refusal raises SignInRefused (the reason is in the audit log only)


@dataclass(frozen=True, slots=True)
class _Account:
    id: str
    password_hash: str | None
    locked_until: datetime | None
    enabled: bool
    status: str


_users = cast(Table, User.__table__)
_ACCOUNT = select(
    _users.c.id, _users.c.password_hash, _users.c.locked_until, _users.c.enabled, _users.c.status
).where(_users.c.username_key == bindparam("key"))
_NOW = bindparam("now", type_=UTCDateTime())
_SIGNED_IN = (
    update(_users)
    .where(_users.c.id == bindparam("uid"))
    .values(
        login_attempts=0,
        locked_until=None,
        first_login_at=func.coalesce(_users.c.first_login_at, _NOW),
        last_login_at=_NOW,
        seen_at=_NOW,
    )
)
_REHASHED = (
    update(_users).where(_users.c.id == bindparam("uid")).values(password_hash=bindparam("hash"))
)
# Sign-in bookkeeping concerns the signing-in user alone (see wrote_for_user).
_BOOKKEEPING = {UNTRACKED: True}


async def _find_account(db: AsyncSession, username: str) -> _Account | None:
    row = (await db.execute(_ACCOUNT, {"key": username_key(username)})).first()
    return None if row is None else _Account(*row)


def _check_lengths(username: str, password: str) -> None:
    errors = []
    if not username or len(username) > 320:
        errors.append(FieldError("username", "invalid", "1 to 320 characters"))
    if not password or len(password) > passwords.MAX_LENGTH:
        errors.append(FieldError("password", "invalid", f"1 to {passwords.MAX_LENGTH} characters"))
    if errors:
        raise Invalid("invalid credentials format", errors)


async def throttle(
    db: AsyncSession,
    limits: Limits,
    ip: str | None,
    username: str,
    actor: Principal | None = None,
) -> None:
    """Per-account and per-address budgets; unknown accounts are counted the same way. The
    first refusal of each window is audited (`auth.login.throttled`, naming the account when
    it exists; the request's address is on every event) and kept although the request is
    refused. The window's later refusals are not audited: a flood must not flood the log."""
    budgets = [("account", f"login:acct:{username_key(username)}", limits.per_account)]
    if ip:
        budgets.append(("address", f"login:ip:{ip}", limits.per_ip))
    for budget, key, limit in budgets:
        verdict = await limits.limiter.hit(key, limit, WINDOW_SECONDS)
        if verdict.allowed:
            continue
        if verdict.first_refusal:
            account = await _find_account(db, username)
            await record(
                db,
                actor or anonymous(),
                "auth.login.throttled",
                target_type="user",
                target_id=account.id if account else None,
                details={"budget": budget, "retry_after_seconds": verdict.retry_after},
            )
        raise RateLimited(
            "too many sign-in attempts, try again later",
            verdict.retry_after,
            keeps_writes=verdict.first_refusal,
        )


# --- refused passwords -----------------------------------------------------------------------
# One UPDATE counts the failure and, from the threshold on, sets the lock (its length from the
# count the same statement reaches, so N parallel failures count exactly N and lock as the
# N-th should). It is keyed by the login name, not the id, so that an unknown account runs the
# very same statement, matching no row.


class _Known(Account, Protocol):
    """An account a refused password is counted against (the sign-in's row, or a User)."""

    @property
    def id(self) -> str: ...


@functools.cache
def _lock_steps(policy: SecurityPolicy) -> tuple[timedelta, ...]:
    """The lock after the threshold-th failure, the one after, ... up to the cap."""
    steps: list[timedelta] = []
    for extra in range(31):
        lock = policy.lockout_for(policy.lockout_threshold + extra)
        assert lock is not None
        steps.append(lock)
        if lock >= policy.lockout_max:
            break
    return tuple(steps)


@functools.cache
def _failure_statement(policy: SecurityPolicy, postgres: bool) -> Update | Select[Any]:
    """The statement that counts a failure; on PostgreSQL it also writes the audit event and
    announces the change to other processes (when a row changed), in one round trip."""
    attempts = _users.c.login_attempts + 1
    steps = _lock_steps(policy)
    lock = [bindparam(f"lock{i}", type_=UTCDateTime()) for i in range(len(steps))]
    whens: list[tuple[ColumnElement[bool], Any]] = [
        (attempts < policy.lockout_threshold, _users.c.locked_until)
    ]
    whens += [(attempts == policy.lockout_threshold + i, lock[i]) for i in range(len(steps) - 1)]
    counted = (
        update(_users)
        .where(_users.c.username_key == bindparam("key"))
        .values(login_attempts=attempts, locked_until=case(*whens, else_=lock[-1]))
        .returning(_users.c.login_attempts)
    )
    if not postgres:
        return counted
    failed = counted.cte("failed")
    return (
        select(
            failed.c.login_attempts,
            func.pg_notify(bindparam("channel"), bindparam("payload")).label("notified"),
        )
        .select_from(failed)
        .add_cte(_bound_insert(audit.INSERT, audit.EVENT_COLUMNS, "a_"))
    )


def _reason(account: _Known | None, now: datetime) -> str:
    """Why a password was refused, for the audit log only (every refusal answers alike)."""
    if account is None:
        return "unknown_account"
    if _is_locked(account, now):
        return "locked"
    if not user_can_sign_in(account):
        return "inactive"
    return "no_password" if account.password_hash is None else "wrong_password"


async def _refuse(
    db: AsyncSession,
    policy: SecurityPolicy,
    failure: tuple[str, str],
    key: str,
    account: _Known | None,
    now: datetime,
    actor: Actor | None = None,
) -> None:
    """Count a refused password against the account under login name `key` (if there is
    one) and audit it: `failure` is (action, method), e.g. ("auth.login.failure", "basic").
    The same statements run for an unknown account as for a known one; only the rare failure
    that locks the account writes a second event (`auth.lockout`)."""
    action, method = failure
    user_id = account.id if account else None
    details = {"method": method, "reason": _reason(account, now)}
    event = event_row(
        actor or anonymous(), action, now, target_type="user", target_id=user_id, details=details
    )
    postgres = db.get_bind().dialect.name == "postgresql"
    statement = _failure_statement(policy, postgres)
    params: dict[str, Any] = {"key": key}
    params |= {f"lock{i}": now + lock for i, lock in enumerate(_lock_steps(policy))}
    if postgres:
        params |= _prefixed("a_", event) | user_notice(user_id or "")
    attempts = (await db.execute(statement, params, execution_options=_BOOKKEEPING)).scalar()
    if not postgres:
        await db.execute(audit.INSERT, event, execution_options=_BOOKKEEPING)
    if attempts is not None and user_id is not None:
        wrote_for_user(db, user_id, announced=postgres)
        if attempts == policy.lockout_threshold:
            lock = policy.lockout_for(attempts)
            assert lock is not None
            seconds = int(lock.total_seconds())
            await record(
                db,
                anonymous(),
                "auth.lockout",
                target_type="user",
                target_id=user_id,
                details={"seconds": seconds},
            )


def _is_locked(user: Account, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


async def _verify(
    hasher: Hasher, user: Account | None, password: str, now: datetime, *, in_slot: bool = False
) -> bool:
    """One argon2 verification whatever the case (unknown, locked, disabled or no password),
    so that timing tells nothing."""
    usable = user is not None and not _is_locked(user, now) and user_can_sign_in(user)
    encoded = user.password_hash if usable and user else None
    return await hasher.verify(encoded, password, in_slot=in_slot)


async def start_session(
    db: AsyncSession,
    policy: SecurityPolicy,
    user_id: str,
    now: datetime | None = None,
    deadline: datetime | None = None,
) -> Minted:
    """A session token for a user who has proved who they are (a password sign-in, or e.g.
    accepting an invite). `deadline` carries an existing session's absolute cap (refresh)."""
    now = now or utcnow()
    return await mint_session(db, user_id, now, *_session_times(policy, now, deadline))


def _session_times(
    policy: SecurityPolicy, now: datetime, deadline: datetime | None
) -> tuple[datetime, datetime]:
    """A new session's expiry and its absolute cap (`deadline`: a refreshed session's)."""
    cap = deadline or now + policy.session_max
    return min(now + policy.session_idle, cap), cap


async def login(
    db: AsyncSession,
    hasher: Hasher,
    policy: SecurityPolicy,
    limits: Limits,
    *,
    username: str,
    password: str,
    ip: str | None,
) -> LoginOutcome:
    """A session for the right password; SignInRefused (keeping its count and audit event)
    for anything else."""
    _check_lengths(username, password)
    await throttle(db, limits, ip, username)
    now = utcnow()
    async with hasher.slot():  # queue for the hasher before taking a database connection
        account = await _find_account(db, username)
        verified = await _verify(hasher, account, password, now, in_slot=True)
    if not verified or account is None:
        await _refuse(db, policy, _LOGIN_FAILED, username_key(username), account, now)
        raise SignInRefused(REFUSED, method="login")
    if account.password_hash and hasher.needs_rehash(account.password_hash):
        rehashed = {"uid": account.id, "hash": await hasher.hash(password)}
        await db.execute(_REHASHED, rehashed, execution_options=_BOOKKEEPING)
    session, secret = tokens.new_session(account.id, now, *_session_times(policy, now, None))
    event = event_row(
        anonymous(),
        "auth.login.success",
        now,
        target_type="user",
        target_id=account.id,
        details={"token": session["id"]},
    )
    await _write_sign_in(db, account.id, now, session, event)
    return LoginOutcome(Minted(Token(**session), secret))


def check_lengths(username: str, password: str) -> None:
    """The same bounds on a sign-in's username and password, whoever checks the password."""
    _check_lengths(username, password)


def may_try(account: Account, now: datetime | None = None) -> bool:
    """Whether a password of this account may be checked at all (not locked, may sign in)."""
    return not _is_locked(account, now or utcnow()) and user_can_sign_in(account)


async def refuse_sign_in(
    db: AsyncSession, policy: SecurityPolicy, username: str, account: User | None
) -> SignInRefused:
    """Count and audit a sign-in refused elsewhere (by a realm's directory) exactly as a
    refused Tenantry password; the caller raises the returned refusal."""
    await _refuse(db, policy, _LOGIN_FAILED, username_key(username), account, utcnow())
    return SignInRefused(REFUSED, method="login")


async def signed_in(
    db: AsyncSession, policy: SecurityPolicy, user_id: str, details: dict[str, Any]
) -> LoginOutcome:
    """A session for a user whose password a realm accepted: the same bookkeeping and audit
    event (`details` added, e.g. the realm) as a Tenantry password sign-in."""
    now = utcnow()
    session, secret = tokens.new_session(user_id, now, *_session_times(policy, now, None))
    event = event_row(
        anonymous(),
        "auth.login.success",
        now,
        target_type="user",
        target_id=user_id,
        details={"token": session["id"], **details},
    )
    await _write_sign_in(db, user_id, now, session, event)
    return LoginOutcome(Minted(Token(**session), secret))


async def _write_sign_in(
    db: AsyncSession, user_id: str, now: datetime, session: dict[str, Any], event: dict[str, Any]
) -> None:
    """The bookkeeping UPDATE and the session and audit INSERTs. On PostgreSQL as one
    statement (data-modifying CTEs) that also sends the commit's notice to other processes:
    one round trip and one pass through SQLAlchemy instead of four. Each row concerns the
    signing-in user alone (see wrote_for_user)."""
    bookkeeping = {"uid": user_id, "now": now}
    postgres = db.get_bind().dialect.name == "postgresql"
    if postgres:
        params = bookkeeping | _prefixed("t_", session) | _prefixed("a_", event)
        params |= user_notice(user_id)
        await db.execute(_WRITES_AT_ONCE, params, execution_options=_BOOKKEEPING)
    else:
        await db.execute(_SIGNED_IN, bookkeeping, execution_options=_BOOKKEEPING)
        await db.execute(tokens.INSERT, session, execution_options=_BOOKKEEPING)
        await db.execute(audit.INSERT, event, execution_options=_BOOKKEEPING)
    wrote_for_user(db, user_id, announced=postgres)


def _prefixed(prefix: str, row: dict[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in row.items()}


def _bound_insert(plain: Insert, columns: tuple[str, ...], prefix: str) -> CTE:
    """`plain`'s INSERT as a CTE whose every value is a parameter named `prefix` + column."""
    table = plain.table
    values = {name: bindparam(prefix + name, type_=table.c[name].type) for name in columns}
    return insert(table).values(values).cte(prefix + "row")


_WRITES_AT_ONCE: Select[Any] = select(
    func.pg_notify(bindparam("channel"), bindparam("payload"))
).add_cte(
    _SIGNED_IN.cte("signed_in"),
    _bound_insert(tokens.INSERT, tokens.SESSION_COLUMNS, "t_"),
    _bound_insert(audit.INSERT, audit.EVENT_COLUMNS, "a_"),
)


async def authenticate_password(
    db: AsyncSession,
    hasher: Hasher,
    policy: SecurityPolicy,
    limits: Limits,
    *,
    username: str,
    password: str,
    ip: str | None,
) -> Principal:
    """Username and password on every request (HTTP Basic, as ECE clients use it): the same
    checks, rate limits, lockout and audit of failures as a sign-in, but no session.
    SignInRefused (keeping its count and audit event) when refused."""
    _check_lengths(username, password)
    await throttle(db, limits, ip, username)
    now = utcnow()
    async with hasher.slot():
        user = await lookup.find_by_username(db, username)
        verified = await _verify(hasher, user, password, now, in_slot=True)
    if not verified or user is None:
        await _refuse(db, policy, _BASIC_FAILED, username_key(username), user, now)
        raise SignInRefused(REFUSED, method="basic")
    if user.login_attempts:
        user.login_attempts = 0
    user.seen_at = now
    return Principal(grants=await load_user_grants(db, user.id), user=user, policy=policy)


def _session_of(actor: Principal) -> Token:
    token = actor.token
    if token is None or token.kind != TokenKind.SESSION.value or actor.user is None:
        raise Invalid("this needs a session token (from POST /tenantry/v1/auth/login)")
    return token


async def logout(db: AsyncSession, actor: Principal) -> None:
    token = _session_of(actor)
    await revoke(db, token.id, by=actor.actor_id)
    await record(db, actor, "auth.logout", target_type="token", target_id=token.id)


async def refresh(db: AsyncSession, actor: Principal) -> Minted:
    """A new session secret for the same session (same absolute deadline); the old one dies."""
    token = _session_of(actor)
    assert actor.user is not None
    now = utcnow()
    minted = await start_session(db, actor.policy, actor.user.id, now, token.max_expires_at)
    if actor.elevated_until is not None and actor.elevated_until > now:
        # The same session under a new secret: it keeps its elevation (ECE's _elevate answers
        # with a refreshed token, which must be the elevated one).
        await _set_elevation(db, minted.token, actor.elevated_until)
    await revoke(db, token.id, by=actor.actor_id)
    await record(
        db,
        actor,
        "auth.refresh",
        target_type="token",
        target_id=minted.token.id,
        details={"replaces": token.id},
    )
    return minted


async def revoke_sessions(db: AsyncSession, actor: Principal, user_id: str) -> int:
    """End every session of a user (yourself, or an administrator for anyone)."""
    if actor.user is None or actor.user.id != user_id:
        actor.require_visible("system.users.get", SYSTEM_SCOPE, "user")
        actor.require("system.users.update", SYSTEM_SCOPE)
    await lookup.get_by_id(db, user_id)
    now = utcnow()
    result = await db.execute(
        update(Token)
        .where(
            Token.user_id == user_id,
            Token.kind == TokenKind.SESSION.value,
            Token.revoked_at.is_(None),
        )
        .values(revoked_at=now, updated_at=now, updated_by=actor.actor_id)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    await record(
        db,
        actor,
        "auth.sessions.revoke",
        target_type="user",
        target_id=user_id,
        details={"count": count},
    )
    return count


@dataclass(frozen=True)
class ElevateOutcome:
    until: datetime  # a wrong password raises ElevationRefused


async def elevate(
    db: AsyncSession,
    hasher: Hasher,
    limits: Limits,
    actor: Principal,
    password: str,
    ip: str | None,
) -> ElevateOutcome:
    """Re-enter your password to gain elevated permissions for a while ("sudo"). Only a
    session elevates, and only that session is elevated: the user's personal tokens and other
    sessions are not (elevation belongs to the credential)."""
    user, session = actor.user, actor.token
    if user is None or session is None or session.kind != TokenKind.SESSION.value:
        raise Invalid("only a session can elevate (sign in first)")
    _check_lengths(user.username, password)
    await throttle(db, limits, ip, user.username, actor)
    now = utcnow()
    if not await _verify(hasher, user, password, now):
        await _refuse(db, actor.policy, _ELEVATE_FAILED, user.username_key, user, now, actor)
        raise ElevationRefused(ELEVATION_REFUSED)
    until = now + actor.policy.elevation
    await _set_elevation(db, session, until)
    user.login_attempts = 0
    await db.flush()
    await record(
        db,
        actor,
        "auth.elevate",
        target_type="user",
        target_id=user.id,
        details={"until": until.isoformat(), "token": session.id},
    )
    return ElevateOutcome(until)


async def _set_elevation(db: AsyncSession, session: Token, until: datetime | None) -> None:
    """By statement: the caller's Token may be a detached copy (from the principal cache).
    A tracked write, so that every worker's cached view of this credential ends."""
    await db.execute(
        update(Token)
        .where(Token.id == session.id)
        .values(elevated_until=until)
        .execution_options(synchronize_session=False)
    )
    session.elevated_until = until


async def drop_elevation(db: AsyncSession, actor: Principal) -> None:
    session = actor.token
    if actor.user is None or session is None or session.kind != TokenKind.SESSION.value:
        raise NotFound("user not found")
    await _set_elevation(db, session, None)
    await record(
        db,
        actor,
        "auth.elevate.drop",
        target_type="user",
        target_id=actor.user.id,
        details={"token": session.id},
    )


async def active_session_count(db: AsyncSession, user_id: str) -> int:
    count = await db.scalar(
        func.count(Token.id)
        .select()
        .where(
            Token.user_id == user_id,
            Token.kind == TokenKind.SESSION.value,
            Token.revoked_at.is_(None),
            Token.expires_at > utcnow(),
        )
    )
    return int(count or 0)
