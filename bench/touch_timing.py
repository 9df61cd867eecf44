"""Benchmark: how long a reading request spends recording its token's use (identity/usage.py).

    python -m bench.touch_timing                       # PostgreSQL, 2 000 tokens, 20 at a time
    python -m bench.touch_timing --db sqlite --tokens 500 --concurrency 1

For each database: a fresh database (created here, dropped at the end) with `--tokens` users,
each with a personal token never used before, made through the services. Then every token is
authenticated as a reading request does (a read transaction, not measured) and `touch()` is
called on it as the request would, timed with perf_counter; `--concurrency` requests run at
once (the worker's 20 connections under load). Printed: touch()'s p50, p99, max and total, the
wall time, and, where the recorder batches the writes, how long the one flush that writes them
all took. Afterwards every token must show its last use and exactly one `token.first_use`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from bench.common import default_pg_url, fresh_database, percentile
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Token
from tenantry.directory import users
from tenantry.directory.users import UserFields
from tenantry.identity import personal_tokens, usage
from tenantry.identity.principals import Principal, authenticate, system_principal

console = Console(stderr=True)
PER_TRANSACTION = 200


async def _mint(database: Database, count: int) -> list[str]:
    """`count` users with one unused personal token each, through the services."""
    secrets: list[str] = []
    while len(secrets) < count:
        async with database.transaction() as db:
            for _ in range(min(PER_TRANSACTION, count - len(secrets))):
                name = f"touch{len(secrets)}@example.com"
                user = await users.create_user(db, system_principal(), name, UserFields())
                minted = await personal_tokens.create_personal_token(
                    db, system_principal(), user.id, name="bench", expires_in_days=1
                )
                secrets.append(minted.secret)
    return secrets


async def _caller(database: Database, secret: str) -> Principal:
    async with database.transaction(write=False) as db:
        principal = await authenticate(db, secret)
        db.expunge_all()
    return principal


async def _timed_touches(database: Database, secrets: list[str], concurrency: int) -> list[float]:
    queue = list(reversed(secrets))
    spent: list[float] = []

    async def request() -> None:
        while queue:
            principal = await _caller(database, queue.pop())
            started = time.perf_counter()
            await usage.touch(database, principal)
            spent.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(request() for _ in range(concurrency)))
    return spent


async def _flush(database: Database) -> float | None:
    """Milliseconds the batched writes took (None: this version writes in touch())."""
    recorder = getattr(usage, "recorder", None)
    if recorder is None:
        return None
    started = time.perf_counter()
    await recorder(database).flush()
    return (time.perf_counter() - started) * 1000


async def _check(database: Database, count: int) -> None:
    async with database.transaction(write=False) as db:
        used = await db.scalar(select(func.count()).where(Token.last_used_at.is_not(None)))
        audited = await db.scalar(
            select(func.count()).where(AuditEvent.action == "token.first_use")
        )
    if used != count or audited != count:
        raise SystemExit(f"expected {count} used and audited tokens, got {used} and {audited}")


async def measure(url: str, tokens: int, concurrency: int) -> dict[str, Any]:
    database = Database(load_settings(database_url=url, db_pool_size=concurrency))
    try:
        secrets = await _mint(database, tokens)
        started = time.perf_counter()
        spent = sorted(await _timed_touches(database, secrets, concurrency))
        wall = (time.perf_counter() - started) * 1000
        flush = await _flush(database)
        await _check(database, tokens)
    finally:
        await database.dispose()
    return {
        "p50": statistics.median(spent),
        "p99": percentile(spent, 99),
        "max": spent[-1],
        "total": sum(spent),
        "wall": wall,
        "flush": flush,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="postgres")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args(argv)
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    table = Table(title=f"touch(): {args.tokens} first uses, {args.concurrency} at a time (ms)")
    for column in ("db", "p50", "p99", "max", "sum in touch()", "wall", "flush"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            pg_url = args.pg_url or default_pg_url()
            with fresh_database(kind, "touch", pg_url=pg_url, sqlite_dir=tmp) as url:
                r = asyncio.run(measure(url, args.tokens, args.concurrency))
            flush = "—" if r["flush"] is None else f"{r['flush']:.1f}"
            figures = (r["p50"], r["p99"], r["max"], r["total"], r["wall"])
            table.add_row(kind, *(f"{v:.3f}" for v in figures), flush)
    Console(file=sys.stdout).print(table)


if __name__ == "__main__":
    main()
