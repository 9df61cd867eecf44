"""Benchmark: listing an organization's users (and GET /users/self) through a real server.

For every database and size: a fresh database, migrations, one organization bulk-loaded with
tenantry.directory.bulk, `tenantry serve` started in a subprocess, a personal token minted for
an ORGANIZATION_OWNER, then for each request below `--warmup` untimed requests followed by
`--requests` timed sequential ones over one keep-alive connection. Client-side latency: the
whole HTTP round trip on 127.0.0.1, including authentication and the JSON body.

    python -m bench.list_users --sizes 10k,100k --db postgres --requests 200

Results: a table on stderr, bench/results/<UTC timestamp>.json, and a Markdown table on stdout
(for docs/performance.md). `--explain` also prints the query plans of each request's SQL
(EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite), captured in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.access import personal_tokens
from tenantry.access.principals import system_principal
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.migrate import upgrade
from tenantry.directory.bulk import BulkInfo, load_organization

RESULTS = Path(__file__).parent / "results"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
console = Console(stderr=True)


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Measurement:
    db: str
    users: int
    case: str
    path: str
    params: dict[str, Any]
    count: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    total_count: int | None
    returned: int | None


@dataclass
class Run:
    db: str
    users: int
    load_seconds: float
    load_timings: dict[str, float]
    bindings: int
    workspace_members: int  # users the workspace filter returns
    dag_tag_members: int
    measurements: list[Measurement] = field(default_factory=list)
    load_average: list[tuple[float, float, float]] = field(default_factory=list)  # start, end


def parse_size(text_value: str) -> int:
    value = text_value.strip().lower().replace("_", "")
    factor = 1
    if value.endswith("k"):
        factor, value = 1_000, value[:-1]
    elif value.endswith("m"):
        factor, value = 1_000_000, value[:-1]
    return int(float(value) * factor)


def label(size: int) -> str:
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


# --- databases -------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _pg_admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def fresh_database(kind: str, size: int, args: argparse.Namespace) -> Iterator[str]:
    """A new, migrated, empty database; dropped afterwards unless --keep."""
    if kind == "postgres":
        name = f"tenantry_bench_{label(size).lower()}"
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(_pg_admin(args.pg_url, drop, f'CREATE DATABASE "{name}"'))
        url = _with_database(args.pg_url, name)
        try:
            upgrade(url)
            yield url
        finally:
            if not args.keep:
                asyncio.run(_pg_admin(args.pg_url, drop))
        return
    directory = Path(args.sqlite_dir or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tenantry_bench_{label(size).lower()}.db"
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    for f in files:
        f.unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    try:
        upgrade(url)
        yield url
    finally:
        if not args.keep:
            for f in files:
                f.unlink(missing_ok=True)


async def mint_token(url: str, user_id: str) -> str:
    database = Database(load_settings(database_url=url))
    try:
        async with database.transaction() as db:
            minted = await personal_tokens.create_personal_token(
                db, system_principal(), user_id, name="bench", expires_in_days=1
            )
            return minted.secret
    finally:
        await database.dispose()


async def holders(url: str, info: BulkInfo, workspace_id: str, tag: str) -> tuple[int, int]:
    """How many users the workspace and dagTags filters should return (for the report)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            ws = await conn.scalar(
                text(
                    "SELECT count(DISTINCT subject_id) FROM role_bindings "
                    "WHERE workspace_id = :ws AND subject_type = 'user'"
                ),
                {"ws": workspace_id},
            )
            tagged = await conn.scalar(
                text(
                    "SELECT count(DISTINCT subject_id) FROM role_bindings "
                    "WHERE organization_id = :org AND dag_tag = :tag AND subject_type = 'user'"
                ),
                {"org": info.organization_id, "tag": tag},
            )
            return int(ws or 0), int(tagged or 0)
    finally:
        await engine.dispose()


# --- the server ------------------------------------------------------------------------------


@contextmanager
def server(url: str, log_path: Path) -> Iterator[str]:
    """`tenantry serve` in a subprocess (it migrates first); stopped by its own pid."""
    port = free_port()
    env = {
        **os.environ,
        "TENANTRY_DATABASE_URL": url,
        "TENANTRY_LOG_LEVEL": "WARNING",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenantry", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{_tail(log_path)}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{_tail(log_path)}")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- measuring -------------------------------------------------------------------------------


def cases(info: BulkInfo, workspace_id: str, tag: str) -> list[Case]:
    users = f"/v1/organizations/{info.organization_id}/users"
    offset = min(10_000, max(info.users - 20, 0))
    return [
        Case("list (first page)", users),
        Case("list sorted by fullName", users, {"sorts": "fullName:asc"}),
        Case("workspaceId filter", users, {"workspaceId": workspace_id}),
        Case("dagTags filter", users, {"dagTags": tag}),
        Case(f"offset={offset}", users, {"offset": offset}),
        Case("GET /v1/users/self", "/v1/users/self"),
    ]


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, min(len(sorted_ms), round(q / 100 * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


def measure(
    client: httpx.Client, case: Case, *, requests: int, warmup: int, db: str, users: int
) -> Measurement:
    body: Any = None
    for _ in range(warmup):
        r = client.get(case.path, params=case.params)
        r.raise_for_status()
    timings = []
    for _ in range(requests):
        start = time.perf_counter()
        r = client.get(case.path, params=case.params)
        timings.append((time.perf_counter() - start) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{case.name}: HTTP {r.status_code} {r.text[:300]}")
        body = r.json()
    timings.sort()
    total = body.get("totalCount") if isinstance(body, dict) else None
    returned = len(body["users"]) if isinstance(body, dict) and "users" in body else None
    return Measurement(
        db=db,
        users=users,
        case=case.name,
        path=case.path,
        params=case.params,
        count=len(timings),
        p50_ms=round(percentile(timings, 50), 2),
        p95_ms=round(percentile(timings, 95), 2),
        mean_ms=round(statistics.fmean(timings), 2) if timings else 0.0,
        min_ms=round(timings[0], 2) if timings else 0.0,
        max_ms=round(timings[-1], 2) if timings else 0.0,
        total_count=total,
        returned=returned,
    )


# --- query plans -----------------------------------------------------------------------------


async def explain(url: str, token: str, info: BulkInfo, the_cases: list[Case]) -> None:
    """Run each list request in-process, capture its SELECTs and show their plans."""
    from tenantry.access.principals import authenticate
    from tenantry.directory.members import MemberQuery, list_members

    database = Database(load_settings(database_url=url))
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, params))

    try:
        for case in the_cases:
            if "/users/self" in case.path:
                continue
            p = case.params
            query = MemberQuery(
                workspace_id=p.get("workspaceId"),
                dag_tags=(p["dagTags"],) if "dagTags" in p else (),
                offset=int(p.get("offset", 0)),
                sorts=(p["sorts"],) if "sorts" in p else (),
            )
            async with database.transaction(write=False) as db:
                actor = await authenticate(db, token)
                captured.clear()
                event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
                try:
                    await list_members(db, actor, info.organization_id, query)
                finally:
                    event.remove(database.engine.sync_engine, "before_cursor_execute", capture)
                statements = list(captured)
                prefix = (
                    "EXPLAIN QUERY PLAN "
                    if database.settings.is_sqlite
                    else "EXPLAIN (ANALYZE, BUFFERS) "
                )
                console.rule(f"{case.name}")
                for statement, params in statements:
                    if "FROM tokens" in statement or "FROM organizations" in statement:
                        continue
                    conn = await db.connection()
                    rows = await conn.exec_driver_sql(prefix + statement, params)
                    print(f"\n-- {case.name}\n{statement}\n-- params: {params}", file=sys.stderr)
                    for row in rows:
                        print("   " + " | ".join(str(x) for x in row), file=sys.stderr)
    finally:
        await database.dispose()


# --- the run ---------------------------------------------------------------------------------


def run_one(kind: str, size: int, args: argparse.Namespace, logs: Path) -> Run:
    with fresh_database(kind, size, args) as url:
        console.print(f"[bold]{kind} {label(size)}[/bold]: loading…")
        info = asyncio.run(
            load_organization(
                url,
                users=size,
                workspaces=args.workspaces,
                deployments_per_workspace=args.deployments,
                seed=args.seed,
            )
        )
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in info.timings.items())
        console.print(
            f"  loaded {info.users:,} users, {info.bindings:,} bindings in {info.seconds:.1f}s "
            f"({timings})",
            soft_wrap=True,
        )
        workspace_id, tag = info.workspace_ids[0], info.dag_tags[0]
        ws_n, tag_n = asyncio.run(holders(url, info, workspace_id, tag))
        token = asyncio.run(mint_token(url, info.owner_id))
        run = Run(kind, size, round(info.seconds, 2), info.timings, info.bindings, ws_n, tag_n)
        run.load_average.append(os.getloadavg())
        the_cases = cases(info, workspace_id, tag)
        if args.explain:
            asyncio.run(explain(url, token, info, the_cases))
        with server(url, logs / f"server-{kind}-{label(size)}.log") as base:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                for case in the_cases:
                    if args.cases and not any(c in case.name for c in args.cases):
                        continue
                    m = measure(
                        client,
                        case,
                        requests=args.requests,
                        warmup=args.warmup,
                        db=kind,
                        users=size,
                    )
                    console.print(
                        f"  {case.name:<26} p50 {m.p50_ms:8.2f} ms  p95 {m.p95_ms:8.2f} ms"
                        f"  (totalCount {m.total_count})",
                        soft_wrap=True,
                    )
                    run.measurements.append(m)
        run.load_average.append(os.getloadavg())
        return run


def machine(args: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": os.getloadavg(),
    }
    with suppress(OSError, subprocess.CalledProcessError):
        git = ["git", "-C", str(Path(__file__).parent)]
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        info["commit"] = commit + ("-dirty" if dirty else "")
    if "postgres" in args.db:

        async def pg() -> dict[str, str]:
            engine = create_async_engine(args.pg_url)
            try:
                async with engine.connect() as conn:
                    out = {"postgres": str(await conn.scalar(text("SHOW server_version")))}
                    for name in ("shared_buffers", "work_mem", "effective_cache_size", "jit"):
                        out[name] = str(await conn.scalar(text(f"SHOW {name}")))
                    return out
            finally:
                await engine.dispose()

        info.update(asyncio.run(pg()))
    return info


def markdown(runs: list[Run]) -> str:
    lines = [
        "| database | users | request | p50 ms | p95 ms | mean ms | n | totalCount |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for m in run.measurements:
            total = "" if m.total_count is None else f"{m.total_count:,}"
            lines.append(
                f"| {run.db} | {label(run.users)} | {m.case} | {m.p50_ms:.1f} | {m.p95_ms:.1f}"
                f" | {m.mean_ms:.1f} | {m.count} | {total} |"
            )
    lines += [
        "",
        "| database | users | bulk load s | role bindings | workspaceId matches | dagTags matches"
        " | load avg (1 min) before/after |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        load = " / ".join(f"{avg[0]:.1f}" for avg in r.load_average)
        lines.append(
            f"| {r.db} | {label(r.users)} | {r.load_seconds:.1f} | {r.bindings:,}"
            f" | {r.workspace_members:,} | {r.dag_tag_members:,} | {load} |"
        )
    return "\n".join(lines)


def rich_table(runs: list[Run]) -> Table:
    table = Table("db", "users", "request", "p50 ms", "p95 ms", "mean ms", "n", "totalCount")
    for run in runs:
        for m in run.measurements:
            table.add_row(
                run.db,
                label(run.users),
                m.case,
                f"{m.p50_ms:.1f}",
                f"{m.p95_ms:.1f}",
                f"{m.mean_ms:.1f}",
                str(m.count),
                "" if m.total_count is None else f"{m.total_count:,}",
            )
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1M", help="comma-separated, e.g. 10k,1M")
    parser.add_argument("--db", default="postgres,sqlite", help="postgres, sqlite or both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TENANTRY_BENCH_POSTGRES_URL", DEFAULT_PG),
        help="any database on the PostgreSQL server; bench databases are created beside it",
    )
    parser.add_argument("--sqlite-dir", default=None, help="where SQLite bench files go")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--deployments", type=int, default=4, help="per workspace")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cases", default="", help="only requests whose name contains one")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--no-save", action="store_true", help="do not write results/*.json")
    args = parser.parse_args(argv)
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    args.db = [d.strip() for d in args.db.replace("both", "postgres,sqlite").split(",")]
    if unknown := set(args.db) - {"postgres", "sqlite"}:
        parser.error(f"unknown database {', '.join(sorted(unknown))}")
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    info = machine(args)
    runs: list[Run] = []
    failures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        logs = Path(tmp)
        for kind in args.db:
            for size in args.sizes:
                try:
                    runs.append(run_one(kind, size, args, logs))
                except Exception as exc:  # keep what the other runs measured
                    console.print(f"[red]{kind} {label(size)} failed:[/red] {exc}")
                    failures.append({"db": kind, "users": size, "error": str(exc)})
    console.print(rich_table(runs), width=160)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        document = {
            "started": started.isoformat(),
            "machine": info,
            "settings": {
                k: v for k, v in vars(args).items() if k not in ("pg_url", "no_save", "explain")
            },
            "runs": [asdict(r) for r in runs],
            "failures": failures,
        }
        out.write_text(json.dumps(document, indent=2))
        console.print(f"results: {out}")
    print(markdown(runs))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
