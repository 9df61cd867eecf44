"""Engine and the transaction scope: the one place in Tenantry that commits."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import TextClause, event, inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from tenantry.config import Settings
from tenantry.db.generation import (
    CHANNEL,
    FLAGS_SCOPE,
    MAX_PAYLOAD,
    SCOPE_SEPARATOR,
    SCOPES_PREFIX,
    Generation,
    generation_for,
    role_scope,
    team_scope,
    token_scope,
    user_scope,
)
from tenantry.db.priority import WritePriority
from tenantry.errors import DomainError

CHANGED = "tenantry.changed"
SCOPES_CHANGED = "tenantry.scopes_changed"
GENERATION = "tenantry.generation"
NOTIFY = "tenantry.notify"
ANNOUNCED = "tenantry.announced"
# Execution option for writes that change nothing a cache derives from (token use stamps).
UNTRACKED = "tenantry_untracked"
# Execution option naming the only scopes (db/generation.py) a bulk statement's rows concern,
# e.g. `delete(RoleBinding).where(subject = user)` → {user_scope(user)}. Without it (or
# UNTRACKED), a statement that is not a SELECT may concern anything.
SCOPED = "tenantry_scopes"


def scoped(*scopes: str) -> dict[str, Any]:
    """Execution options for a bulk statement whose rows concern only `scopes` (none: rows
    no cached answer is derived from)."""
    return {SCOPED: frozenset(scopes)}


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
    `info[SCOPES_CHANGED]`, the scopes (db/generation.py) its rows concern, or
    `info[CHANGED]` when a row may concern anyone. Conservative: a table or statement this
    module does not know the scopes of counts as CHANGED (see `_row_scopes`)."""


@event.listens_for(TrackedSession, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    scopes: set[str] = session.info.setdefault(SCOPES_CHANGED, set())
    for obj, state in _written(session):
        found = _row_scopes(obj, type(obj).__table__.name, state)
        if found is None:
            session.info[CHANGED] = True
            return
        scopes |= found


def _written(session: Session) -> Iterator[tuple[Any, str]]:
    yield from ((obj, "new") for obj in session.new)
    yield from ((obj, "dirty") for obj in session.dirty if session.is_modified(obj))
    yield from ((obj, "deleted") for obj in session.deleted)


# Rows no cached answer is derived from.
_UNCACHED = frozenset({"audit_events", "holder_counts"})
# Rows whose own fields no cached answer shows, but whose deletion cascades in the database
# (unseen here) to rows that answers do derive from.
_CASCADING = frozenset({"organizations", "workspaces", "deployments"})


def _row_scopes(obj: Any, table: str, state: str) -> set[str] | None:
    """The scopes a written row concerns (None: it may concern anyone). New rows of a user or
    team concern nobody yet: no cached answer can mention what did not exist."""
    if table in _UNCACHED or (table in _CASCADING and state != "deleted"):
        return set()
    if table in ("users", "teams"):
        if state == "new":
            return set()
        return {(user_scope if table == "users" else team_scope)(obj.id)}
    if table in ("memberships", "team_members", "user_feature_flags"):
        return {user_scope(obj.user_id)}
    if table == "tokens":
        # A token without a user (a SCIM token) is a subject of its own.
        return {user_scope(obj.user_id) if obj.user_id is not None else token_scope(obj.id)}
    if table == "role_bindings":
        return {_SUBJECT_SCOPES[obj.subject_type](obj.subject_id)}
    if table == "invites":
        return {user_scope(u) for u in _values(obj, "user_id") if u is not None}
    if table == "custom_roles":
        return {role_scope(obj.organization_id, n) for n in _values(obj, "name")}
    if table == "feature_flags":
        return {FLAGS_SCOPE}
    return None


_SUBJECT_SCOPES = {"user": user_scope, "team": team_scope, "token": token_scope}


def _values(obj: Any, attribute: str) -> set[Any]:
    """An attribute's value now and before this flush (a renamed role, a re-bound invite)."""
    history = inspect(obj).attrs[attribute].history
    return {getattr(obj, attribute), *history.deleted}


@event.listens_for(TrackedSession, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_select or state.execution_options.get(UNTRACKED):
        return
    statement = state.statement
    if isinstance(statement, TextClause) and _READ_ONLY_SQL.match(statement.text):
        return
    scoped = state.execution_options.get(SCOPED)
    if scoped is None:
        state.session.info[CHANGED] = True
    else:
        state.session.info.setdefault(SCOPES_CHANGED, set()).update(scoped)


_READ_ONLY_SQL = re.compile(r"\s*(SELECT|SHOW|EXPLAIN)\b", re.IGNORECASE)


_NOTIFY = text("SELECT pg_notify(:c, :p)")


@event.listens_for(TrackedSession, "before_commit")
def _before_commit(session: Session) -> None:
    session.flush()  # before_commit runs before the commit's own flush
    if not session.info.get(NOTIFY):
        return
    # Delivered to every listening process when, and only if, this transaction commits.
    payload = _notice(session.info)
    if payload is not None:
        session.execute(_NOTIFY, {"c": CHANNEL, "p": payload}, execution_options={UNTRACKED: True})


def _notice(info: dict[str, Any]) -> str | None:
    """What to NOTIFY: "" (anything changed), the changed scopes, or None (nothing to say)."""
    if info.get(CHANGED):
        return ""
    scopes = info.get(SCOPES_CHANGED, set()) - info.get(ANNOUNCED, set())
    if not scopes:
        return None
    payload = SCOPES_PREFIX + SCOPE_SEPARATOR.join(sorted(scopes))
    if len(payload.encode()) > MAX_PAYLOAD:
        info[CHANGED] = True  # too many to name: this process bumps everything too
        return ""
    return payload


@event.listens_for(TrackedSession, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(ANNOUNCED, None)
    scopes = session.info.pop(SCOPES_CHANGED, None)
    if session.info.pop(CHANGED, False):
        session.info[GENERATION].bump()
    elif scopes:
        session.info[GENERATION].bump_scopes(scopes)


@event.listens_for(TrackedSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(CHANGED, None)
    session.info.pop(SCOPES_CHANGED, None)
    session.info.pop(ANNOUNCED, None)


def wrote_for_user(session: AsyncSession, user_id: str, *, announced: bool = False) -> None:
    """Statements marked UNTRACKED wrote rows that concern this one user alone (a sign-in's
    bookkeeping and session token): at commit, every process drops what it cached for that
    user, just as after an ORM flush of the same rows. `announced`: the caller's own
    statement already ran `pg_notify` with `user_notice(user_id)` in this transaction
    (delivered at commit all the same), so the commit need not send it again."""
    scope = user_scope(user_id)
    session.info.setdefault(SCOPES_CHANGED, set()).add(scope)
    if announced:
        session.info.setdefault(ANNOUNCED, set()).add(scope)


def user_notice(user_id: str) -> dict[str, str]:
    """`channel` and `payload` for `pg_notify`: a change that concerns this user alone."""
    return {"channel": CHANNEL, "payload": SCOPES_PREFIX + user_scope(user_id)}


async def _keep_as_is(_conn: Any) -> None:
    """The read pool's connections only ever run single SELECTs outside a transaction:
    nothing to reset between uses (asyncpg's default reset is a round trip per release)."""


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
        self._read_pool: Any = None
        self._read_pool_lock = asyncio.Lock()
        # SQLite has one writer at a time. Its own wait for the lock (busy_timeout) sleeps
        # and retries with back-off up to 100 ms, so under load the writers of one process
        # overtook each other for seconds (role changes: p99 5-10 s in bench/mix.py); they
        # queue here instead, first come first served. Other processes still meet
        # busy_timeout.
        self._sqlite_writer = asyncio.Lock()
        self.priority = WritePriority(settings.write_priority_ms / 1000)

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """Commit if the block succeeds, roll back if it raises. Services only flush."""
        if write and self.settings.is_sqlite:
            async with self._sqlite_writer, self._transaction(write=True) as session:
                yield session
            return
        async with self._transaction(write=write) as session:
            yield session

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncSession]:
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

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        """PostgreSQL only: one read-only statement, outside any ORM session, on a small pool
        of asyncpg connections of its own (prepared once per connection, plain rows). For the
        hot path's cold loads, where SQLAlchemy's session and result machinery would cost
        several times the query itself. None when no row matches."""
        pool = self._read_pool or await self._open_read_pool()
        async with pool.acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def _open_read_pool(self) -> Any:
        import asyncpg

        async with self._read_pool_lock:
            if self._read_pool is None:
                dsn = make_url(self.settings.database_url).set(drivername="postgresql")
                self._read_pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=self.settings.db_pool_size,
                    reset=_keep_as_is,
                )
        return self._read_pool

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.generation.close()
        if self._read_pool is not None:
            await self._read_pool.close()
            self._read_pool = None
        await self.engine.dispose()
