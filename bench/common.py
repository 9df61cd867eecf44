"""What every benchmark needs: sizes, free ports, fresh databases, servers, tokens, the machine.

Shared by bench.list_users, bench.login and bench.suite (it used to be copied between them).
Servers are started in subprocesses and stopped by their own pid; databases are created with a
`tenantry_bench_` prefix and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import glob
import os
import platform
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def default_pg_url() -> str:
    return os.environ.get("TENANTRY_BENCH_POSTGRES_URL") or DEFAULT_PG


# --- sizes -----------------------------------------------------------------------------------


def parse_size(text_value: str) -> int:
    """`10k` -> 10000, `1M` -> 1000000, `2_500` -> 2500."""
    value = text_value.strip().lower().replace("_", "")
    factor = 1
    if value.endswith("k"):
        factor, value = 1_000, value[:-1]
    elif value.endswith("m"):
        factor, value = 1_000_000, value[:-1]
    return int(float(value) * factor)


def label(size: int | None) -> str:
    """10000 -> `10k`, 1000000 -> `1M`."""
    if size is None:
        return ""
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(sorted_ms: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, min(len(sorted_ms), round(q / 100 * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


# --- databases -------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def pg_admin(url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE / DROP DATABASE)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def bench_db_name(tag: str) -> str:
    """`tenantry_bench_<tag>_<random>`: two runs at once do not collide."""
    safe = "".join(c if c.isalnum() else "_" for c in tag.lower())
    return f"tenantry_bench_{safe}_{secrets.token_hex(3)}"


@contextmanager
def fresh_database(
    kind: str,
    tag: str,
    *,
    pg_url: str | None = None,
    sqlite_dir: str | Path | None = None,
    keep: bool = False,
    migrate: bool = True,
) -> Iterator[str]:
    """A new (by default migrated) empty database, `postgres` or `sqlite`; dropped afterwards
    unless `keep`. Yields its SQLAlchemy URL."""
    if kind == "postgres":
        admin = pg_url or default_pg_url()
        name = bench_db_name(tag)
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(pg_admin(admin, f'CREATE DATABASE "{name}"'))
        url = with_database(admin, name)
        try:
            if migrate:
                from tenantry.db.migrate import upgrade

                upgrade(url)
            yield url
        finally:
            if keep:
                print(f"kept database {name}", file=sys.stderr)
            else:
                asyncio.run(pg_admin(admin, drop))
        return
    if kind != "sqlite":
        raise ValueError(f"unknown database kind {kind!r}")
    directory = Path(sqlite_dir or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{bench_db_name(tag)}.db"
    url = f"sqlite+aiosqlite:///{path}"
    try:
        if migrate:
            from tenantry.db.migrate import upgrade

            upgrade(url)
        yield url
    finally:
        if keep:
            print(f"kept database {path}", file=sys.stderr)
        else:  # the database, its -wal and -shm, and any other sidecar file
            for f in directory.glob(glob.escape(path.name) + "*"):
                f.unlink(missing_ok=True)


def db_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


# --- tokens ----------------------------------------------------------------------------------


async def mint_token(url: str, user_id: str, *, name: str = "bench") -> str:
    """A personal token (`tnt_…`) for the user, through the services."""
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.identity import personal_tokens
    from tenantry.identity.principals import system_principal

    database = Database(load_settings(database_url=url))
    try:
        async with database.transaction() as db:
            minted = await personal_tokens.create_personal_token(
                db, system_principal(), user_id, name=name, expires_in_days=1
            )
            return minted.secret
    finally:
        await database.dispose()


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    port: int
    pid: int
    workers: int
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: uvicorn's worker children when there are
        several workers, else the server process itself."""
        import psutil

        try:
            proc = psutil.Process(self.pid)
            children = proc.children(recursive=True)
        except psutil.Error:
            return []
        workers = [c.pid for c in children if _is_worker(c)]
        return workers or [self.pid]


def _is_worker(proc: Any) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except Exception:
        return False
    return "resource_tracker" not in cmdline


def tenantry_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tenantry",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def tenantry_env(url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "TENANTRY_DATABASE_URL": url,
        "TENANTRY_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


@contextmanager
def server(
    command: Sequence[str] | None = None,
    *,
    url: str | None = None,
    workers: int = 1,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    health: str = "/healthz",
    start_timeout: float = 120.0,
) -> Iterator[Server]:
    """Start a server in a subprocess and wait until `health` answers 200.

    Without `command`, `tenantry serve --workers W` pointed at `url` (it migrates first).
    A `command` may contain `{port}`, replaced by the chosen port. Stopped by its own pid
    (SIGTERM, then SIGKILL after 20 s)."""
    port = port or free_port()
    if command is None:
        if url is None:
            raise ValueError("either command or url")
        argv = tenantry_command(port, workers)
        # CPU claims of its own (access/passwords.py): each bench server places its event
        # loop as it would alone on the host, whatever other bench servers are running.
        claims = log_path.parent / f"cpu-claims-{port}"
        claims.mkdir(parents=True, exist_ok=True)
        environment = tenantry_env(url, {"TENANTRY_CPU_CLAIMS_DIR": str(claims), **(env or {})})
    else:
        argv = [part.replace("{port}", str(port)) for part in command]
        environment = {**os.environ, **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early ({argv[:4]}):\n{tail(log_path)}")
            with suppress(httpx.TransportError):
                if httpx.get(base + health, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start ({argv[:4]}):\n{tail(log_path)}")
            time.sleep(0.2)
        if workers > 1:  # every worker up, not just the first one
            _wait_for_workers(proc.pid, workers, deadline)
        yield Server(base=base, port=port, pid=proc.pid, workers=workers, log_path=log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _wait_for_workers(pid: int, workers: int, deadline: float) -> None:
    try:
        import psutil
    except ImportError:  # pragma: no cover - the bench extra brings it
        time.sleep(2)
        return
    while time.monotonic() < deadline:
        with suppress(psutil.Error):
            children = [c for c in psutil.Process(pid).children() if _is_worker(c)]
            if len(children) >= workers:
                time.sleep(1.0)  # imports and the app factory
                return
        time.sleep(0.2)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- the machine -----------------------------------------------------------------------------


def git_commit() -> str | None:
    with suppress(OSError, subprocess.CalledProcessError):
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    return None


async def _pg_settings(pg_url: str) -> dict[str, str]:
    engine = create_async_engine(pg_url)
    try:
        async with engine.connect() as conn:
            out = {"postgres": str(await conn.scalar(text("SHOW server_version")))}
            for name in ("shared_buffers", "work_mem", "effective_cache_size", "jit"):
                out[name] = str(await conn.scalar(text(f"SHOW {name}")))
            return out
    finally:
        await engine.dispose()


def machine(pg_url: str | None = None) -> dict[str, Any]:
    """CPUs, platform, versions, load average, commit and the PostgreSQL settings."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": list(os.getloadavg()),
        "commit": git_commit(),
    }
    with suppress(ImportError):
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    if pg_url:
        try:
            info.update(asyncio.run(_pg_settings(pg_url)))
        except Exception as exc:
            info["postgres_error"] = str(exc)
    return info
