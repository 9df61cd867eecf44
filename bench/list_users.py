"""Benchmark: listing an organization's users (and GET /users/self) through a real server.

For every database and size: a fresh database, migrations, one organization bulk-loaded with
tenantry.devdata.bulk, `tenantry serve` started in a subprocess, a personal token minted for
an ORGANIZATION_OWNER, then for each request below `--warmup` untimed requests followed by
`--requests` timed sequential ones over one keep-alive connection. Client-side latency: the
whole HTTP round trip on 127.0.0.1, including authentication and the JSON body.

    python -m bench.list_users --sizes 10k,100k --db postgres --requests 200

With `--rss-seconds S`, the largest PostgreSQL organization is also put under load for S
seconds (bench.loadgen, 20 connections rotating over the list requests) while psutil samples
the resident memory of the server's worker process(es): the peak RSS.

Results: a table on stderr, bench/results/<UTC timestamp>.json, and a Markdown table on stdout.
`make bench` (bench.suite) drives this module through `run_one` and reports the figures against
their targets. `--explain` also prints the query plans of each request's SQL (EXPLAIN ANALYZE
on PostgreSQL, EXPLAIN QUERY PLAN on SQLite), captured in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    RESULTS,
    Server,
    default_pg_url,
    fresh_database,
    label,
    machine,
    mint_token,
    parse_size,
    percentile,
    server,
)
from bench.loadgen import LoadSpec, run_load
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.devdata.bulk import BulkInfo, load_organization

console = Console(stderr=True)
Say = Callable[[str], None]


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    kind: str = "other"  # "page": a first page, unfiltered or with one filter; "self"; "other"


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
    kind: str = "other"


@dataclass
class Run:
    db: str
    users: int
    load_seconds: float
    load_timings: dict[str, float]
    bindings: int
    workspace_members: int  # users the workspace filter returns
    dag_tag_members: int
    deployment_members: int = 0
    measurements: list[Measurement] = field(default_factory=list)
    load_average: list[tuple[float, float, float]] = field(default_factory=list)  # start, end
    rss: dict[str, Any] | None = None  # peak worker RSS under load (--rss-seconds)


async def biggest_deployment(url: str, info: BulkInfo) -> str:
    """The deployment whose filter matches the most users ("" without deployments)."""
    if not info.deployment_ids:
        return ""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text(
                    "SELECT deployment_id FROM role_bindings WHERE organization_id = :org "
                    "AND deployment_id IS NOT NULL AND subject_type = 'user' "
                    "GROUP BY deployment_id ORDER BY count(DISTINCT subject_id) DESC, "
                    "deployment_id LIMIT 1"
                ),
                {"org": info.organization_id},
            )
            return str(found or info.deployment_ids[0])
    finally:
        await engine.dispose()


async def holders(
    url: str, info: BulkInfo, workspace_id: str, deployment_id: str, tag: str
) -> tuple[int, int, int]:
    """How many users the workspace, deployment and dagTags filters should return."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            async def distinct(where: str, params: dict[str, str]) -> int:
                statement = (
                    "SELECT count(DISTINCT subject_id) FROM role_bindings "
                    f"WHERE {where} AND subject_type = 'user'"
                )
                return int(await conn.scalar(text(statement), params) or 0)

            ws = await distinct("workspace_id = :ws", {"ws": workspace_id})
            dep = await distinct("deployment_id = :dep", {"dep": deployment_id})
            tagged = await distinct(
                "organization_id = :org AND dag_tag = :tag",
                {"org": info.organization_id, "tag": tag},
            )
            return ws, dep, tagged
    finally:
        await engine.dispose()


# --- measuring -------------------------------------------------------------------------------


def cases(info: BulkInfo, workspace_id: str, deployment_id: str, tag: str) -> list[Case]:
    users = f"/v1/organizations/{info.organization_id}/users"
    offset = min(10_000, max(info.users - 20, 0))
    return [
        Case("list (first page)", users, kind="page"),
        Case("list sorted by fullName", users, {"sorts": "fullName:asc"}, kind="page"),
        Case("list sorted by fullName desc", users, {"sorts": "fullName:desc"}, kind="page"),
        Case("workspaceId filter", users, {"workspaceId": workspace_id}, kind="page"),
        Case("deploymentId filter", users, {"deploymentId": deployment_id}, kind="page"),
        Case("dagTags filter", users, {"dagTags": tag}, kind="page"),
        Case(f"offset={offset}", users, {"offset": offset}),
        Case("GET /v1/users/self", "/v1/users/self", kind="self"),
    ]


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
        kind=case.kind,
    )


def peak_rss_under_load(
    srv: Server, headers: dict[str, str], the_cases: list[Case], seconds: float, tool: str
) -> dict[str, Any]:
    """Load the server with the list requests (20 connections) while sampling its workers'
    RSS every 100 ms; the peak of the largest worker and of their sum."""
    import psutil

    paths = [str(httpx.URL(c.path, params=c.params)) for c in the_cases]
    pids = srv.worker_pids()
    procs = [psutil.Process(pid) for pid in pids]
    peak_one = peak_sum = 0
    before = max((p.memory_info().rss for p in procs), default=0)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_one, peak_sum
        while not stop.is_set():
            rss = []
            for p in procs:
                with suppress(psutil.Error):
                    rss.append(p.memory_info().rss)
            if rss:
                peak_one, peak_sum = max(peak_one, max(rss)), max(peak_sum, sum(rss))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stats = run_load(
            LoadSpec(srv.base, paths, headers, connections=20, seconds=seconds, warmup=1.0),
            tool,
        )
    finally:
        stop.set()
        sampler.join()
    mb = 1024 * 1024
    return {
        "workers": len(pids),
        "before_mb": round(before / mb, 1),
        "peak_mb": round(peak_one / mb, 1),
        "peak_sum_mb": round(peak_sum / mb, 1),
        "load": asdict(stats),
    }


# --- query plans -----------------------------------------------------------------------------


async def explain(url: str, token: str, info: BulkInfo, the_cases: list[Case]) -> None:
    """Run each list request in-process, capture its SELECTs and show their plans."""
    from tenantry.directory.members import MemberQuery, list_members
    from tenantry.identity.principals import authenticate

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
                deployment_id=p.get("deploymentId"),
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


def run_one(
    kind: str,
    size: int,
    args: argparse.Namespace,
    logs: Path,
    say: Say | None = None,
    rss_seconds: float = 0.0,
) -> Run:
    """Load, serve and measure one database at one size."""
    say = say or console.print
    with fresh_database(
        kind, label(size), pg_url=args.pg_url, sqlite_dir=args.sqlite_dir, keep=args.keep
    ) as url:
        say(f"[bold]{kind} {label(size)}[/bold]: loading…")
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
        say(
            f"  loaded {info.users:,} users, {info.bindings:,} bindings in {info.seconds:.1f}s "
            f"({timings})"
        )
        workspace_id, tag = info.workspace_ids[0], info.dag_tags[0]
        deployment_id = asyncio.run(biggest_deployment(url, info))
        ws_n, dep_n, tag_n = asyncio.run(holders(url, info, workspace_id, deployment_id, tag))
        token = asyncio.run(mint_token(url, info.owner_id))
        run = Run(kind, size, round(info.seconds, 2), info.timings, info.bindings, ws_n, tag_n)
        run.deployment_members = dep_n
        run.load_average.append(os.getloadavg())
        the_cases = cases(info, workspace_id, deployment_id, tag)
        if not deployment_id:
            the_cases = [c for c in the_cases if "deploymentId" not in c.params]
        if args.cases:
            the_cases = [c for c in the_cases if any(w in c.name for w in args.cases)]
        if args.explain:
            asyncio.run(explain(url, token, info, the_cases))
        headers = {"Authorization": f"Bearer {token}"}
        with server(url=url, log_path=logs / f"server-{kind}-{label(size)}.log") as srv:
            with httpx.Client(base_url=srv.base, headers=headers, timeout=120) as client:
                for case in the_cases:
                    m = measure(
                        client,
                        case,
                        requests=args.requests,
                        warmup=args.warmup,
                        db=kind,
                        users=size,
                    )
                    say(
                        f"  {case.name:<28} p50 {m.p50_ms:8.2f} ms  p95 {m.p95_ms:8.2f} ms"
                        f"  (totalCount {m.total_count})"
                    )
                    run.measurements.append(m)
            if rss_seconds > 0:
                say(f"  peak RSS under load ({rss_seconds:g} s)…")
                listing = [c for c in the_cases if c.kind != "self"]
                run.rss = peak_rss_under_load(
                    srv, headers, listing, rss_seconds, getattr(args, "loadgen", "auto")
                )
                load = run.rss["load"]
                say(
                    f"  peak RSS {run.rss['peak_mb']} MB (before {run.rss['before_mb']} MB) at "
                    f"{load['req_s']} req/s, {load['errors']} errors"
                )
        run.load_average.append(os.getloadavg())
        return run


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
        "| database | users | bulk load s | role bindings | workspaceId matches"
        " | deploymentId matches | dagTags matches | load avg (1 min) before/after |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        load = " / ".join(f"{avg[0]:.1f}" for avg in r.load_average)
        lines.append(
            f"| {r.db} | {label(r.users)} | {r.load_seconds:.1f} | {r.bindings:,}"
            f" | {r.workspace_members:,} | {r.deployment_members:,} | {r.dag_tag_members:,}"
            f" | {load} |"
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1M", help="comma-separated, e.g. 10k,1M")
    parser.add_argument("--db", default="postgres,sqlite", help="postgres, sqlite or both")
    parser.add_argument(
        "--pg-url",
        default=default_pg_url(),
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
    parser.add_argument(
        "--rss-seconds",
        type=float,
        default=0.0,
        help="peak worker RSS under this many seconds of load, largest PostgreSQL size",
    )
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
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
    info = machine(args.pg_url if "postgres" in args.db else None)
    runs: list[Run] = []
    failures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        logs = Path(tmp)
        for kind in args.db:
            for size in args.sizes:
                rss = args.rss_seconds if kind == "postgres" and size == max(args.sizes) else 0
                try:
                    runs.append(run_one(kind, size, args, logs, rss_seconds=rss))
                except Exception as exc:  # keep what the other runs measured
                    console.print(f"[red]{kind} {label(size)} failed:[/red] {exc}")
                    failures.append({"db": kind, "users": size, "error": str(exc)})
    console.print(rich_table(runs), width=160)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"list-users-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
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
