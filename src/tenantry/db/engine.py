"""Engine and the transaction scope: the one place in Tenantry that commits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import TextClause, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from tenantry.config import Settings
from tenantry.db.generation import CHANNEL, USERS_PREFIX, Generation, generation_for
from tenantry.errors import DomainError

CHANGED = "tenantry.changed"
USERS_CHANGED = "tenantry.users_changed"
GENERATION = "tenantry.generation"
NOTIFY = "tenantry.notify"
ANNOUNCED = "tenantry.announced"
# Execution option for writes that change nothing a cache derives from (token use stamps).
UNTRACKED = "tenantry_untracked"

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def _setup_sqlite(engine: AsyncEngine) -> None:
    """Let SQLite begin transactions as we ask: IMMEDIATE for writers, so that two writers
    queue on the database lock instead of failing when a reader tries to upgrade."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30})
        _setup_sqlite(engine)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=False,
    )


class TrackedSession(Session):
    """Remembers what this transaction wrote that caches of the directory derive from:
    `info[CHANGED]` for anything that may concern everyone, `info[USERS_CHANGED]` for the
    users whose own bookkeeping alone changed (a sign-in, a session token). Conservative: any
    flush or statement other than a SELECT counts as CHANGED, except new audit rows, the
    cases below and statements marked UNTRACKED."""


_APPEND_ONLY = frozenset({"audit_events"})
# Columns of a user that no other user's cached answers depend on.
_USER_BOOKKEEPING = frozenset(
    {
        "login_attempts",
        "locked_until",
        "first_login_at",
        "last_login_at",
        "seen_at",
        "password_hash",
    }
)


@event.listens_for(TrackedSession, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    users: set[str] = session.info.setdefault(USERS_CHANGED, set())
    if session.deleted:
        session.info[CHANGED] = True
    for obj in (*session.new, *session.dirty):
        table = type(obj).__table__.name
        if table in _APPEND_ONLY or (obj in session.dirty and not session.is_modified(obj)):
            continue
        owner = _sole_user(obj, table, is_new=obj in session.new)
        if owner is None:
            session.info[CHANGED] = True
        else:
            users.add(owner)


def _sole_user(obj: object, table: str, *, is_new: bool) -> str | None:
    """The one user a written row concerns alone, if it does (None: it may concern anyone).
    A token (new, revoked, refreshed) concerns the user it belongs to; a user row, when
    only their bookkeeping columns changed."""
    if table == "tokens":
        return getattr(obj, "user_id", None)
    if table == "users" and not is_new:
        changed = {a.key for a in inspect(obj).attrs if a.history.has_changes()}
        if changed <= _USER_BOOKKEEPING:
            return str(getattr(obj, "id", None))
    return None


@event.listens_for(TrackedSession, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_select or state.execution_options.get(UNTRACKED):
        return
    statement = state.statement
    if isinstance(statement, TextClause) and _READ_ONLY_SQL.match(statement.text):
        return
    state.session.info[CHANGED] = True


_READ_ONLY_SQL = re.compile(r"\s*(SELECT|SHOW|EXPLAIN)\b", re.IGNORECASE)


@event.listens_for(TrackedSession, "before_commit")
def _before_commit(session: Session) -> None:
    session.flush()  # before_commit runs before the commit's own flush
    if not session.info.get(NOTIFY):
        return
    # Delivered to every listening process when, and only if, this transaction commits.
    notify = text("SELECT pg_notify(:c, :p)")
    untracked = {UNTRACKED: True}
    if session.info.get(CHANGED):
        session.execute(notify, {"c": CHANNEL, "p": ""}, execution_options=untracked)
    elif users := session.info.get(USERS_CHANGED, set()) - session.info.get(ANNOUNCED, set()):
        payload = USERS_PREFIX + ",".join(sorted(users))
        session.execute(notify, {"c": CHANNEL, "p": payload}, execution_options=untracked)


@event.listens_for(TrackedSession, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(ANNOUNCED, None)
    users = session.info.pop(USERS_CHANGED, None)
    if session.info.pop(CHANGED, False):
        session.info[GENERATION].bump()
    elif users:
        session.info[GENERATION].bump_users(users)


@event.listens_for(TrackedSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(CHANGED, None)
    session.info.pop(USERS_CHANGED, None)
    session.info.pop(ANNOUNCED, None)


def wrote_for_user(session: AsyncSession, user_id: str, *, announced: bool = False) -> None:
    """Statements marked UNTRACKED wrote rows that concern this one user alone (a sign-in's
    bookkeeping and session token): at commit, every process drops what it cached for that
    user, just as after an ORM flush of the same rows. `announced`: the caller's own
    statement already ran `pg_notify` with `user_notice(user_id)` in this transaction
    (delivered at commit all the same), so the commit need not send it again."""
    session.info.setdefault(USERS_CHANGED, set()).add(user_id)
    if announced:
        session.info.setdefault(ANNOUNCED, set()).add(user_id)


def user_notice(user_id: str) -> dict[str, str]:
    """`channel` and `payload` for `pg_notify`: a change that concerns this user alone."""
    return {"channel": CHANNEL, "payload": USERS_PREFIX + user_id}


def _used(session: AsyncSession) -> bool:
    return session.in_transaction() or bool(session.new or session.dirty or session.deleted)


class Database:
    """Owns the engine; hands out one transaction per request or CLI command."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.generation: Generation = generation_for(settings.database_url)
        self.sessions = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            autoflush=True,
            sync_session_class=TrackedSession,
            info={GENERATION: self.generation, NOTIFY: not settings.is_sqlite},
        )

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """Commit if the block succeeds, roll back if it raises. Services only flush."""
        session = self.sessions()
        try:
            if write and self.settings.is_sqlite:
                await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            yield session
            if _used(session):
                await session.commit()
        except DomainError as refusal:
            if refusal.keeps_writes and _used(session):
                await session.commit()
            elif session.in_transaction():
                await session.rollback()
            raise
        except BaseException:
            if session.in_transaction():
                await session.rollback()
            raise
        finally:
            # A request answered from caches never touched its session: skip the round of
            # greenlet switches that commit and close would cost for nothing.
            if _used(session) or session.identity_map:
                await session.close()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.generation.close()
        await self.engine.dispose()
