"""Recording when tokens and users were last seen.

A writing request records its caller's use in its own transaction (it holds the write lock
already). A reading request only queues it: the process's `UsageRecorder` writes what was
queued about once a second (and at shutdown) in one transaction of set-based statements. So a
read never takes or waits for a write lock, and token use costs each worker one write
transaction a second instead of one per caller and minute. The statements are UNTRACKED: a
last use or a first-use audit row changes nothing a cached answer is derived from.

They carry token and user ids and times only, never a secret or its digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from tenantry.audit import log as audit
from tenantry.audit.log import RequestInfo, current_request
from tenantry.clock import utcnow
from tenantry.db.base import UTCDateTime
from tenantry.db.engine import UNTRACKED, Database
from tenantry.db.models import Token, User
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import TOUCH_INTERVAL, TokenKind, needs_touch

log = logging.getLogger("tenantry.usage")

FIRST_USE = "token.first_use"
# How often the recorder writes what reading requests queued.
FLUSH_INTERVAL = 1.0
# Uses queued at most (one per token); beyond, the oldest is dropped: memory stays bounded
# when the database cannot keep up or is away.
MAX_PENDING = 100_000
# Uses written per transaction: bounds how long a flush holds rows (PostgreSQL) or the
# write lock (SQLite) when a backlog is written.
MAX_BATCH = 10_000
# A use whose row was busy, or whose flush failed, is tried this often in all, then dropped.
MAX_ATTEMPTS = 3
# A session this close to its idle deadline is written at once (the flusher is woken), so
# that a worker or cache that loads it from the database in the meantime finds it alive.
URGENT = timedelta(seconds=15)

_UNTRACKED = {UNTRACKED: True}


@dataclass(frozen=True, slots=True)
class _Actor:
    """Who used the token, as the audit log names them (a Principal's actor fields)."""

    actor_type: str
    actor_id: str | None


@dataclass(slots=True)
class Use:
    """One token's use, as a reading request queues it."""

    token_id: str
    user_id: str | None  # whose seen_at moves (None: an API token acting as itself)
    at: datetime
    expires_at: datetime | None  # a session's slid expiry; None: the stored one stays
    actor: _Actor
    request: RequestInfo  # for the first-use audit row: the request that used it
    attempts: int = 0


class UsedToken(Protocol):
    """What recording a use reads of a token: an ORM Token, or a cached answer's TokenUse."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def last_used_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def max_expires_at(self) -> datetime | None: ...


class UsedBy(Protocol):
    @property
    def id(self) -> str: ...


class Caller(Protocol):
    """What recording a use reads of the caller: a Principal, or a cached answer's
    CallerUse."""

    @property
    def token(self) -> UsedToken | None: ...
    @property
    def user(self) -> UsedBy | None: ...
    @property
    def policy(self) -> SecurityPolicy: ...
    @property
    def actor_type(self) -> str: ...
    @property
    def actor_id(self) -> str | None: ...


@dataclass(slots=True)
class TokenUse:
    id: str
    kind: str
    last_used_at: datetime | None
    expires_at: datetime | None
    max_expires_at: datetime | None


@dataclass(slots=True)
class UserUse:
    id: str
    seen_at: datetime | None = None


@dataclass(slots=True)
class CallerUse:
    """All a cached answer keeps of the caller it was made for: what recording the token's
    use needs (about 400 bytes, where a Principal with its ORM rows and grants is 5-20 KiB)."""

    token: TokenUse | None
    user: UserUse | None
    policy: SecurityPolicy
    actor_type: str
    actor_id: str | None

    @classmethod
    def of(cls, principal: Principal) -> CallerUse:
        token, user = principal.token, principal.user
        return cls(
            None
            if token is None
            else TokenUse(
                # interned: one "personal" for every cached caller, not one per row loaded
                token.id,
                sys.intern(token.kind),
                token.last_used_at,
                token.expires_at,
                token.max_expires_at,
            ),
            None if user is None else UserUse(user.id, user.seen_at),
            principal.policy,
            principal.actor_type,
            principal.actor_id,
        )


def _remember(obj: object, name: str, value: object) -> None:
    """Set a loaded value without making an ORM object dirty (a read must not write)."""
    if hasattr(obj, "_sa_instance_state"):
        set_committed_value(obj, name, value)
    else:
        setattr(obj, name, value)


def _sliding_expiry(principal: Caller, token: UsedToken, now: datetime) -> datetime | None:
    """Sessions live `session_idle` past their last use, never past their absolute deadline.
    None for other tokens, whose expiry use does not move."""
    if token.kind != TokenKind.SESSION.value:
        return None
    extended = now + principal.policy.session_idle
    return min(extended, token.max_expires_at) if token.max_expires_at else extended


def _use(principal: Caller, token: UsedToken, now: datetime) -> Use:
    user = principal.user
    return Use(
        token_id=token.id,
        user_id=user.id if user is not None else None,
        at=now,
        expires_at=_sliding_expiry(principal, token, now),
        actor=_Actor(principal.actor_type, principal.actor_id),
        request=current_request.get(),
    )


# --- writing a batch ------------------------------------------------------------------------------


async def write(db: AsyncSession, uses: Sequence[Use]) -> list[Use]:
    """Write the uses of distinct tokens in `db`'s transaction: last_used_at (and a session's
    slid expiry) where it is stale (a full TOUCH_INTERVAL old, as `needs_touch` says, so that
    a copy of the token loaded before another worker wrote it moves nothing), the users'
    seen_at (never backwards), and one `token.first_use` audit row per token whose
    last_used_at was NULL under this transaction's lock. Returns the uses whose rows another
    transaction holds (PostgreSQL), to be tried again rather than waited for."""
    store = _Postgres if db.get_bind().dialect.name == "postgresql" else _Sqlite
    unused = await store.lock_tokens(db, [u.token_id for u in uses])
    held = [u for u in uses if u.token_id in unused]
    if held:
        await store.update_tokens(db, held)
    seen = _latest_per_user(held)
    users = await store.lock_users(db, list(seen)) if seen else set()
    if users:
        await store.update_users(db, {u: seen[u] for u in users})
    if first := [u for u in held if unused[u.token_id]]:
        rows = [_first_use_row(u) for u in first]
        await db.execute(audit.INSERT, rows, execution_options=_UNTRACKED)
    return [
        u
        for u in uses
        if u.token_id not in unused or (u.user_id is not None and u.user_id not in users)
    ]


def _latest_per_user(uses: Iterable[Use]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for u in uses:
        if u.user_id is not None and (u.user_id not in latest or latest[u.user_id] < u.at):
            latest[u.user_id] = u.at
    return latest


def _first_use_row(use: Use) -> dict[str, Any]:
    row = audit.event_row(use.actor, FIRST_USE, use.at, target_type="token", target_id=use.token_id)
    return row | {"request_id": use.request.request_id, "ip": use.request.ip}


_TOKENS = cast(Table, Token.__table__)
_USERS = cast(Table, User.__table__)


class _Sqlite:
    """SQLite: the flush's transaction holds the database's write lock (BEGIN IMMEDIATE), so
    what it reads cannot change before it writes; the updates are executemany."""

    TOKENS = (
        update(_TOKENS)
        .where(_TOKENS.c.id == bindparam("b_id"))
        .where(
            or_(
                _TOKENS.c.last_used_at.is_(None),
                _TOKENS.c.last_used_at <= bindparam("b_stale", type_=UTCDateTime),
            )
        )
        .values(
            last_used_at=bindparam("b_at", type_=UTCDateTime),
            expires_at=func.coalesce(
                bindparam("b_expires", type_=UTCDateTime), _TOKENS.c.expires_at
            ),
        )
    )
    USERS = (
        update(_USERS)
        .where(_USERS.c.id == bindparam("b_id"))
        .where(
            or_(
                _USERS.c.seen_at.is_(None),
                _USERS.c.seen_at < bindparam("b_at", type_=UTCDateTime),
            )
        )
        .values(seen_at=bindparam("b_at", type_=UTCDateTime))
    )

    @staticmethod
    async def lock_tokens(db: AsyncSession, ids: list[str]) -> dict[str, bool]:
        """{token id: never used before} for the tokens that exist."""
        query = select(_TOKENS.c.id, _TOKENS.c.last_used_at.is_(None)).where(_TOKENS.c.id.in_(ids))
        return {row[0]: bool(row[1]) for row in await db.execute(query)}

    @staticmethod
    async def lock_users(db: AsyncSession, ids: list[str]) -> set[str]:
        return set(ids)

    @classmethod
    async def update_tokens(cls, db: AsyncSession, uses: Sequence[Use]) -> None:
        rows = [
            {
                "b_id": u.token_id,
                "b_at": u.at,
                "b_stale": u.at - TOUCH_INTERVAL,
                "b_expires": u.expires_at,
            }
            for u in uses
        ]
        await db.execute(cls.TOKENS, rows, execution_options=_UNTRACKED)

    @classmethod
    async def update_users(cls, db: AsyncSession, seen: dict[str, datetime]) -> None:
        rows = [{"b_id": user_id, "b_at": at} for user_id, at in seen.items()]
        await db.execute(cls.USERS, rows, execution_options=_UNTRACKED)


class _Postgres:
    """PostgreSQL: one statement per table whatever the batch's size (arrays, unnest), and
    rows another transaction holds are skipped (SKIP LOCKED), never waited for: a flush
    holding many rows and waiting for one could deadlock with a writer that holds that row
    and waits for one of the flush's."""

    LOCK_TOKENS = text(
        "SELECT id, last_used_at IS NULL FROM tokens"
        " WHERE id = ANY(CAST(:ids AS text[])) FOR UPDATE SKIP LOCKED"
    )
    TOKENS = text(
        "UPDATE tokens AS t SET last_used_at = v.at,"
        " expires_at = COALESCE(v.expires_at, t.expires_at)"
        " FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[]),"
        " CAST(:stales AS timestamptz[]), CAST(:expires AS timestamptz[]))"
        " AS v(id, at, stale, expires_at)"
        " WHERE t.id = v.id AND (t.last_used_at IS NULL OR t.last_used_at <= v.stale)"
    )
    LOCK_USERS = text(
        "SELECT id FROM users WHERE id = ANY(CAST(:ids AS text[])) FOR UPDATE SKIP LOCKED"
    )
    USERS = text(
        "UPDATE users AS u SET seen_at = v.at"
        " FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[])) AS v(id, at)"
        " WHERE u.id = v.id AND (u.seen_at IS NULL OR u.seen_at < v.at)"
    )

    @classmethod
    async def lock_tokens(cls, db: AsyncSession, ids: list[str]) -> dict[str, bool]:
        """{token id: never used before} for the tokens that exist and no one else holds."""
        result = await db.execute(cls.LOCK_TOKENS, {"ids": ids}, execution_options=_UNTRACKED)
        return {row[0]: bool(row[1]) for row in result}

    @classmethod
    async def lock_users(cls, db: AsyncSession, ids: list[str]) -> set[str]:
        result = await db.execute(cls.LOCK_USERS, {"ids": ids}, execution_options=_UNTRACKED)
        return {row[0] for row in result}

    @classmethod
    async def update_tokens(cls, db: AsyncSession, uses: Sequence[Use]) -> None:
        params = {
            "ids": [u.token_id for u in uses],
            "ats": [u.at for u in uses],
            "stales": [u.at - TOUCH_INTERVAL for u in uses],
            "expires": [u.expires_at for u in uses],
        }
        await db.execute(cls.TOKENS, params, execution_options=_UNTRACKED)

    @classmethod
    async def update_users(cls, db: AsyncSession, seen: dict[str, datetime]) -> None:
        params = {"ids": list(seen), "ats": list(seen.values())}
        await db.execute(cls.USERS, params, execution_options=_UNTRACKED)


# --- the recorder ---------------------------------------------------------------------------------


class UsageRecorder:
    """The uses reading requests queued in this process, written by `flush`: every
    `interval` seconds once `start`ed (the app's lifespan), and by `stop` at shutdown.
    Without a started recorder (tests through httpx's ASGITransport) only `flush` writes."""

    def __init__(
        self,
        database: Database,
        *,
        interval: float = FLUSH_INTERVAL,
        capacity: int = MAX_PENDING,
        batch: int = MAX_BATCH,
    ) -> None:
        # Weak: the registry below must not keep a disposed Database alive.
        self._database = weakref.ref(database)
        self.interval = interval
        self.capacity = capacity
        self.batch = batch
        self.pending: dict[str, Use] = {}  # by token id, oldest first
        self._writing: dict[str, Use] = {}  # what the flush under way writes
        self.dropped = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.flushed = asyncio.Event()  # set after each periodic flush (tests wait on it)
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def add(self, use: Use, *, urgent: bool = False) -> None:
        """Queue a use (no await: this is on the request's path). A token already queued
        keeps its place and the first use's request, and takes the later time."""
        known = self.pending.get(use.token_id)
        if known is not None:
            if use.at > known.at:
                known.at, known.expires_at = use.at, use.expires_at
        else:
            if len(self.pending) >= self.capacity:
                del self.pending[next(iter(self.pending))]
                self.dropped += 1
            self.pending[use.token_id] = use
        if urgent:
            self._wake.set()

    async def flush(self) -> int:
        """Write what is queued now; returns how many uses were written. Never raises: a
        failure is logged and its uses are tried again (MAX_ATTEMPTS in all)."""
        async with self._lock:
            self._writing, self.pending = self.pending, {}
            self._report_dropped()
            batch = list(self._writing.values())
            written = 0
            try:
                for start in range(0, len(batch), self.batch):
                    written += await self._write(batch[start : start + self.batch])
            finally:
                self._writing = {}
            return written

    def queued(self, token_id: str) -> Use | None:
        """The token's use this process recorded and has not written yet (queued, or in the
        flush under way)."""
        return self.pending.get(token_id) or self._writing.get(token_id)

    async def _write(self, uses: list[Use]) -> int:
        database = self._database()
        if database is None:
            return 0
        try:
            async with database.transaction() as db:
                retry = await write(db, uses)
        except Exception:
            log.warning("could not record the use of %d tokens", len(uses), exc_info=True)
            retry = uses
        for use in retry:
            self._retry(use)
        return len(uses) - len(retry)

    def _retry(self, use: Use) -> None:
        use.attempts += 1
        if use.attempts < MAX_ATTEMPTS:
            self.add(use)
        else:
            self.dropped += 1

    def _report_dropped(self) -> None:
        if self.dropped:
            log.warning("dropped the recorded use of %d tokens", self.dropped)
            self.dropped = 0

    def start(self) -> None:
        """Flush every `interval` seconds from now on (in the running event loop)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):  # the interval is up
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()
            self.flushed.set()

    async def stop(self) -> None:
        """Stop flushing periodically, then write what is left (at shutdown). The periodic
        task is never cancelled midway through a flush: it finishes the one it is in."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        await self.flush()


_recorders: weakref.WeakKeyDictionary[Database, UsageRecorder] = weakref.WeakKeyDictionary()


def recorder(database: Database) -> UsageRecorder:
    """This process's recorder for `database` (made on first use)."""
    found = _recorders.get(database)
    if found is None:
        found = _recorders[database] = UsageRecorder(database)
    return found


# --- the request's side ---------------------------------------------------------------------------


async def touch(
    database: Database,
    principal: Caller,
    request_db: AsyncSession | None = None,
    now: datetime | None = None,
) -> None:
    """Record the caller's token use when its last recorded use is stale (at most once per
    TOUCH_INTERVAL per token).

    A writing request (`request_db`) records it in its own transaction; a reading request
    queues it for this process's recorder and returns at once: it neither writes nor waits
    for a write. Never raises for a reading request."""
    token = principal.token
    now = now or utcnow()
    if token is None or not needs_touch(token.last_used_at, now):
        return
    if request_db is not None:
        use = _use(principal, token, now)
        for busy in await write(request_db, [use]):
            recorder(database).add(busy)
    else:
        use = _queue(recorder(database), principal, token, now)
    # Not ORM changes: marking the token dirty would make this read request write. The
    # token may be shared through the principal cache, which must see the new expiry now,
    # before the recorder writes it.
    _remember(token, "last_used_at", use.at)
    if use.expires_at is not None:
        _remember(token, "expires_at", use.expires_at)
    if principal.user is not None:  # a view built after this shows the new stamp
        _remember(principal.user, "seen_at", use.at)


def _queue(usage: UsageRecorder, principal: Caller, token: UsedToken, now: datetime) -> Use:
    """Queue the use, unless this process recorded one within the interval that is not
    written yet (the caller was loaded again from the database meanwhile): then its copy
    of the token and user shows that one, as every other answer of this process does."""
    queued = usage.queued(token.id)
    if queued is not None and now - queued.at < TOUCH_INTERVAL:
        return queued
    use = _use(principal, token, now)
    usage.add(use, urgent=_urgent(token, now))
    return use


def _urgent(token: UsedToken, now: datetime) -> bool:
    return token.kind == TokenKind.SESSION.value and (
        token.expires_at is not None and token.expires_at - now < URGENT
    )
