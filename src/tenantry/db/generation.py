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
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger("tenantry.generation")
CHANNEL = "tenantry_directory"
RETRY_SECONDS = 5.0


class Generation:
    """Process-local only: right for one process (SQLite in memory, the CLI)."""

    def __init__(self) -> None:
        self._local = 0

    @property
    def reliable(self) -> bool:
        return self.stamp() is not None

    def stamp(self) -> Any:
        """An opaque value that changes with every change; None while changes may go unseen."""
        return self._local

    def bump(self) -> None:
        """After a commit that may have changed the directory."""
        self._local += 1

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
                    if os.fstat(fd).st_size < 8:
                        os.ftruncate(fd, 8)
                    self._map = mmap.mmap(fd, 8)
                finally:
                    os.close(fd)
            except OSError:
                log.warning("cannot share cache invalidation through %s", self._path)
                self._failed = True
        return self._map

    def shared(self) -> int | None:
        """The counter in the file (None: the file cannot be used)."""
        mapped = self._mapped()
        return struct.unpack_from("<Q", mapped, 0)[0] if mapped is not None else None

    def stamp(self) -> Any:
        shared = self.shared()
        return None if shared is None else (self._local, shared)

    def bump(self) -> None:
        super().bump()
        shared = self._mapped()
        if shared is not None:
            # A fresh random value, not an increment: two writers bumping at once can never
            # write the same value back (a lost increment would leave stale entries valid).
            struct.pack_into("<Q", shared, 0, secrets.randbits(64))

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

    def _on_notify(self, *_: Any) -> None:
        self._local += 1

    def _on_lost(self, *_: Any) -> None:
        log.warning("lost the LISTEN connection; caching is off until it is back")
        self._conn = None
        self._local += 1

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
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
