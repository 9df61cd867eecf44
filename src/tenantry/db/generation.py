"""The directory's generation: a stamp that changes whenever committed state may have changed,
in this process or in any other process serving the same database.

Caches of derived state (who a token belongs to, what they may do, the caller's own view) tag
each entry with the stamp read *before* they loaded it, and use an entry only while the stamp
is unchanged. A writer changes the stamp after its commit, so an entry loaded before the commit
can never outlive it:

* in the writer's own process at once (`bump`, before the response is sent);
* on PostgreSQL, in every other process on the writer's host through a shared counter file
  (as for SQLite, below), and in processes on other hosts when the NOTIFY that the writer's
  transaction sent reaches their listening connection (PostgreSQL delivers it at commit; a
  few milliseconds at most on a busy machine). If the listening connection is lost, the
  stamp is unreliable and nothing is cached until it is back;
* on SQLite, in every other process on the machine through a shared 8-byte counter file next
  to the database, written after each commit and read on every look-up (a memory read).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mmap
import os
import secrets
import struct
import tempfile
import time
import zlib
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger("tenantry.generation")
CHANNEL = "tenantry_directory"
# A NOTIFY payload naming the only scopes a change concerns, one per line; an empty payload
# means "anything may have changed".
SCOPES_PREFIX = "scopes:"
SCOPE_SEPARATOR = "\n"
MAX_PAYLOAD = 7_900  # PostgreSQL refuses NOTIFY payloads of 8 000 bytes: beyond, say "anything"
# Per-scope stamps: scopes share a slot by hash, which only ever costs an extra miss. 65 536
# slots keep that rare with tens of thousands of callers (512 KiB of shared file).
SLOTS = 65_536
FILE_SIZE = 16 + 8 * SLOTS
RETRY_SECONDS = 5.0

# What a cached answer can depend on, and so what a change can name (see db/engine.py for
# the rows that name each, identity/principals.py for the scopes an answer depends on).
FLAGS_SCOPE = "flags"  # the instance's feature flags, which every user's view shows


def user_scope(user_id: str) -> str:
    """The user's row, memberships, own role bindings, teams joined, tokens, invites, flags."""
    return f"user:{user_id}"


def team_scope(team_id: str) -> str:
    """The team's row and its role bindings (which every member holds)."""
    return f"team:{team_id}"


def token_scope(token_id: str) -> str:
    """An API token's own role bindings."""
    return f"token:{token_id}"


def role_scope(organization_id: str, name: str) -> str:
    """A custom role of an organization, by name (what its holders' bindings name)."""
    return f"role:{organization_id}:{name}"


def slot(scope: str) -> int:
    return zlib.crc32(scope.encode()) % SLOTS


def _offset(index: int) -> int:
    return 16 + 8 * index


class Generation:
    """Process-local only: right for one process (SQLite in memory, the CLI).

    Besides the stamp for any change, each scope (a user, a team, a custom role, …) has a
    stamp of its own, for changes that concern only what depends on it; and an *epoch* counts
    every such change, so that a load that overlapped one is not kept (see identity/cache)."""

    def __init__(self) -> None:
        self._local = 0
        self._epoch = 0
        self._scopes = array("Q", bytes(8 * SLOTS))

    @property
    def reliable(self) -> bool:
        return self.stamp() is not None

    def stamp(self) -> Any:
        """An opaque value that changes with every change; None while changes may go unseen."""
        return self._local

    def bump(self) -> None:
        """After a commit that may have changed anything."""
        self._local += 1

    def epoch(self) -> Any:
        """Changes with every scoped change (read it before and after a load)."""
        return self._epoch

    def slot_stamps(self, slots: tuple[int, ...]) -> tuple[Any, ...]:
        """The stamps of these scope slots (`slot(scope)`), in order."""
        scopes = self._scopes
        return tuple([scopes[i] for i in slots])

    def bump_scopes(self, scopes: Iterable[str]) -> None:
        """After a commit whose changes concern only what depends on these scopes."""
        self._epoch += 1
        for scope in scopes:
            self._scopes[slot(scope)] += 1

    async def ensure_started(self) -> None:
        """Start following other processes' changes, if this kind of generation does."""

    async def close(self) -> None:
        """Stop following other processes."""


class FileGeneration(Generation):
    """SQLite: processes sharing the database file share a counter file beside it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._map: mmap.mmap | None = None
        self._failed = False

    def _mapped(self) -> mmap.mmap | None:
        if self._map is None and not self._failed:
            try:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    if os.fstat(fd).st_size < FILE_SIZE:
                        os.ftruncate(fd, FILE_SIZE)
                    self._map = mmap.mmap(fd, FILE_SIZE)
                finally:
                    os.close(fd)
            except OSError:
                log.warning("cannot share cache invalidation through %s", self._path)
                self._failed = True
        return self._map

    def shared(self) -> int | None:
        """The counter in the file (None: the file cannot be used)."""
        return self._read(0)

    def stamp(self) -> Any:
        shared = self.shared()
        return None if shared is None else (self._local, shared)

    def bump(self) -> None:
        super().bump()
        self._write(0)

    def epoch(self) -> Any:
        return (self._epoch, self.shared_epoch())

    def slot_stamps(self, slots: tuple[int, ...]) -> tuple[Any, ...]:
        # One flat tuple (own stamps, then the file's): a cached entry keeps it.
        return super().slot_stamps(slots) + self.shared_slot_stamps(slots)

    def shared_epoch(self) -> int | None:
        """The scoped change counter in the file (None: the file cannot be used)."""
        return self._read(8)

    def shared_slot_stamps(self, slots: tuple[int, ...]) -> tuple[int | None, ...]:
        mapped = self._mapped()
        if mapped is None:
            return (None,) * len(slots)
        return tuple([struct.unpack_from("<Q", mapped, _offset(i))[0] for i in slots])

    def bump_scopes(self, scopes: Iterable[str]) -> None:
        names = list(scopes)
        super().bump_scopes(names)
        for scope in names:
            self._write(_offset(slot(scope)))
        self._write(8)  # the epoch last: a reader that sees it sees the slots too

    def _read(self, offset: int) -> int | None:
        mapped = self._mapped()
        return struct.unpack_from("<Q", mapped, offset)[0] if mapped is not None else None

    def _write(self, offset: int) -> None:
        mapped = self._mapped()
        if mapped is not None:
            # A fresh random value, not an increment: two writers bumping at once can never
            # write the same value back (a lost increment would leave stale entries valid).
            struct.pack_into("<Q", mapped, offset, secrets.randbits(64))

    async def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


class NotifyGeneration(Generation):
    """PostgreSQL: a dedicated connection LISTENs on CHANNEL; writers NOTIFY in their commit."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._retry_at = 0.0

    def stamp(self) -> Any:
        return self._local if self._conn is not None else None

    async def ensure_started(self) -> None:
        if self.reliable or time.monotonic() < self._retry_at:
            return
        async with self._lock:
            if self.reliable:
                return
            await self._connect()

    async def _connect(self) -> None:
        import asyncpg

        try:
            conn = await asyncpg.connect(self._dsn)
            await conn.add_listener(CHANNEL, self._on_notify)
            conn.add_termination_listener(self._on_lost)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            log.warning("cannot LISTEN for directory changes; caching is off for now")
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        self._conn = conn
        self.bump()  # anything may have changed while nobody was listening

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(SCOPES_PREFIX):
            # This process's counters only (as `_local` below): the writer bumped its own host's
            # file, and every process here hears the same notification, so the overrides that
            # also write this host's file would only invalidate its workers a second time.
            Generation.bump_scopes(self, payload[len(SCOPES_PREFIX) :].split(SCOPE_SEPARATOR))
        else:
            self._local += 1

    def _on_lost(self, *_: Any) -> None:
        log.warning("lost the LISTEN connection; caching is off until it is back")
        self._conn = None
        self._local += 1

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._on_lost)  # closing is not losing it
            with contextlib.suppress(Exception):
                await conn.close()


class HostAndNotifyGeneration(NotifyGeneration):
    """PostgreSQL with a shared counter file for the processes on this host as well.

    NOTIFY reaches other hosts within the time PostgreSQL takes to deliver it, but on a
    loaded machine a worker may read its next request before that; the file, bumped before
    the writer answers, closes that window for every worker on the writer's host."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        key = hashlib.sha256(make_url(url).render_as_string(hide_password=True).encode())
        self._host = FileGeneration(
            Path(tempfile.gettempdir()) / f"tenantry-{key.hexdigest()[:16]}.gen"
        )

    def stamp(self) -> Any:
        # The host file is a shortcut: without it NOTIFY alone still keeps entries correct.
        return (self._local, self._host.shared()) if self._conn is not None else None

    def bump(self) -> None:
        super().bump()
        self._host.bump()

    def epoch(self) -> Any:
        return (self._epoch, self._host.shared_epoch())

    def slot_stamps(self, slots: tuple[int, ...]) -> tuple[Any, ...]:
        return Generation.slot_stamps(self, slots) + self._host.shared_slot_stamps(slots)

    def bump_scopes(self, scopes: Iterable[str]) -> None:
        names = list(scopes)
        super().bump_scopes(names)
        self._host.bump_scopes(names)

    async def close(self) -> None:
        await super().close()
        await self._host.close()


def generation_for(url: str) -> Generation:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return HostAndNotifyGeneration(url)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        return FileGeneration(Path(f"{database}-tenantry-gen"))
    return Generation()
