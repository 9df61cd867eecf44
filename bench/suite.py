"""`make bench`: the whole benchmark suite on this machine, figures against their targets.

    python -m bench.suite                 # everything, ≈55 minutes on 2 cores (mix: ≈35)
    python -m bench.suite --quick         # smoke test: 10k users, 5 s runs, ≈12 minutes
    python -m bench.suite --only http,login --seconds 10
    python -m bench.suite --only mix --quick

Groups (`--only` / `--skip` take these names):

  http           a PostgreSQL organization of --http-users users; `GET /v1/users/self`,
                 `GET /api/v1/user` (ece) and `GET /api/admin/user` (unleash) with the owner's
                 personal token, and the ceiling (bench.ceiling_app: a bare ASGI app on the same
                 uvicorn stack answering a constant JSON body of `/v1/users/self`'s size), with
                 1, 2 and 4 workers (quick: 1 and 2)
  fastapi-users  fastapi-users' documented SQLAlchemy + bearer app (bench/fastapi_users_app.py,
                 in its own venv bench/.venv-fastapi-users) on PostgreSQL, `GET /users/me`, JWT
                 and database strategies, 1 worker
  listing        bench.list_users: 10k, 100k, 1M users on PostgreSQL and SQLite (quick: 10k),
                 bulk-load time, and the peak worker RSS under load at the largest PostgreSQL
                 size
  login          bench.login: logins/s, and `GET /v1/users/self` p99 alone and under login load;
                 then the graded ratio from paired rounds (bench.login_ab), default settings,
                 and TENANTRY_PIN_EVENT_LOOP=off beside it, per worker count
  engine         bench.engine.run(quick): permission checks against pycasbin (if present)
  mix            bench.mix (issue 15): --mix-callers distinct callers (2k,20k; quick 2k), each
                 with a personal token, rotating on `GET /v1/users/self` while a writer replaces
                 roles at --mix-rates per second (0,20,100) in another organization or in the
                 callers' own, with freshness probes; 1 and 2 workers, PostgreSQL and SQLite,
                 the cold path (TENANTRY_CACHE=off) and a one-token baseline per configuration;
                 cache hit rates from the workers' counters; full run only: a worker's RSS with
                 --mix-memory (100k) callers each used once
  scim           bench.scim (issue 17): an organization of --scim-users accounts its identity
                 provider manages (PostgreSQL 1M, SQLite 100k; quick 100k and 20k), SCIM
                 token; `filter=userName eq` p95 (1 connection) and req/s (4), --scim-provision
                 (10k; quick 2k) users POSTed with 16 connections and counted in the database,
                 a PATCH adding 1k members to a 10k-member group and one removing them (Entra's
                 value list); 1 and 2 workers (quick 1)

Each HTTP figure comes from a load generator in its own process over loopback (bench.loadgen:
wrk where installed, else `python -m bench.loadgen`), --connections connections for --seconds
after a --warmup. Results go to bench/results/<UTC timestamp>.json (one schema, see
bench.report); a full run also rewrites the generated section of docs/performance.md and the
charts in docs/img/ (`--docs` / `--no-docs` to choose; a --quick run does not by default).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from bench import fastapi_users_venv, list_users, login, login_ab, mix, report, scim
from bench.common import (
    RESULTS,
    default_pg_url,
    fresh_database,
    label,
    machine,
    mint_token,
    parse_size,
    server,
)
from bench.loadgen import LoadSpec, LoadStats, choose_tool, run_load

console = Console(stderr=True)
GROUP_NAMES = ("http", "fastapi-users", "listing", "login", "engine", "mix", "scim")
SELF = "/v1/users/self"
ENDPOINTS = {  # figure name: path (all three accept `Authorization: Bearer <tnt_…>`)
    "astro GET /v1/users/self": SELF,
    "ece GET /api/v1/user": "/api/v1/user",
    "unleash GET /api/admin/user": "/api/admin/user",
}
CEILING = "ceiling (bare ASGI app)"
UNLEASH_PAT_REQ_S = 300.0  # a real Unleash 8.2 with a personal access token
Figure = dict[str, Any]
Say = Callable[[str], None]


def figure(group: str, name: str, **fields: Any) -> Figure:
    """A figure in the results schema (missing fields are None)."""
    base: Figure = {
        "group": group,
        "name": name,
        "endpoint": None,
        "db": None,
        "workers": None,
        "users": None,
        "req_s": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "errors": None,
        "value": None,
        "unit": None,
        "target": None,
        "ratio": None,
        "ratio_of": None,
        "pass": None,
        "note": None,
    }
    base.update(fields)
    return base


def load_fields(stats: LoadStats) -> dict[str, Any]:
    return {
        "req_s": stats.req_s,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
        "errors": stats.errors,
        "tool": stats.tool,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or a != a or b != b:  # None, zero, NaN
        return None
    return round(a / b, 2)


class Steps:
    """The progress bar: one step per load run / size / phase."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=total)

    def say(self, message: str) -> None:
        self.progress.console.print(message, soft_wrap=True, highlight=False)

    def start(self, what: str) -> None:
        self.progress.update(self.task, description=what)

    def done(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)


# --- http: ceiling, the three endpoints, scale-out ----------------------------------------------


def spec_for(base: str, path: str, token: str | None, args: argparse.Namespace) -> LoadSpec:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return LoadSpec(
        base,
        [path],
        headers,
        connections=args.connections,
        seconds=args.seconds,
        warmup=args.warmup,
    )


def run_http(args: argparse.Namespace, steps: Steps, logs: Path) -> list[Figure]:
    from tenantry.devdata.bulk import load_organization

    users = args.http_users
    measured: dict[tuple[str, int], LoadStats] = {}
    stats: LoadStats | None
    common = {"db": "postgres", "users": users}
    with fresh_database("postgres", f"http_{label(users)}", pg_url=args.pg_url) as url:
        steps.start(f"http: loading {label(users)} users")
        info = asyncio.run(
            load_organization(url, users=users, workspaces=50, deployments_per_workspace=4, seed=42)
        )
        token = asyncio.run(mint_token(url, info.owner_id))
        body_bytes = 0
        for workers in args.workers:
            log = logs / f"tenantry-http-{workers}.log"
            with server(url=url, workers=workers, log_path=log) as srv:
                auth = {"Authorization": f"Bearer {token}"}
                for name, path in ENDPOINTS.items():
                    r = httpx.get(srv.base + path, headers=auth, timeout=30)
                    if r.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:200]}")
                    if path == SELF:
                        body_bytes = len(r.content)
                for name, path in ENDPOINTS.items():
                    steps.start(f"http: {name}, {workers} worker(s)")
                    stats = run_load(spec_for(srv.base, path, token, args), args.loadgen)
                    measured[name, workers] = stats
                    steps.say(_line(name, workers, stats))
                    steps.done()
            steps.start(f"http: ceiling, {workers} worker(s)")
            command = [sys.executable, "-m", "bench.ceiling_app", "--port", "{port}"]
            command += ["--workers", str(workers), "--bytes", str(body_bytes)]
            with server(command, workers=workers, log_path=logs / f"ceiling-{workers}.log") as c:
                stats = run_load(spec_for(c.base, SELF, None, args), args.loadgen)
            measured[CEILING, workers] = stats
            steps.say(_line(CEILING, workers, stats))
            steps.done()

    figures: list[Figure] = []
    note_ceiling = f"constant {body_bytes}-byte JSON body (the size of GET {SELF})"
    ceiling_1 = measured.get((CEILING, 1))
    if ceiling_1:
        figures.append(
            figure(
                "ceiling",
                CEILING,
                endpoint="GET (any path)",
                db="none",
                workers=1,
                note=note_ceiling,
                **load_fields(ceiling_1),
            )
        )
    for name, path in ENDPOINTS.items():
        stats = measured.get((name, 1))
        if stats is None:
            continue
        share = ratio(stats.req_s, ceiling_1.req_s if ceiling_1 else None)
        figures.append(
            figure(
                "ceiling",
                name,
                endpoint=f"GET {path}",
                workers=1,
                target="≥ 0.5x the ceiling (50%)",
                ratio=share,
                ratio_of="req/s / ceiling req/s",
                **{"pass": share is not None and share >= 0.5 and stats.errors == 0},
                **common,
                **load_fields(stats),
            )
        )
    for name in [*ENDPOINTS, CEILING]:
        one = measured.get((name, 1))
        for workers in args.workers:
            stats = measured.get((name, workers))
            if stats is None:
                continue
            figures.append(
                figure(
                    "scale-out",
                    name,
                    endpoint=f"GET {ENDPOINTS.get(name, '(any path)')}",
                    workers=workers,
                    ratio=ratio(stats.req_s, one.req_s if one else None),
                    ratio_of="req/s / req/s with 1 worker",
                    **common,
                    **load_fields(stats),
                )
            )
    for name in ("ece GET /api/v1/user", "unleash GET /api/admin/user"):
        for workers in [w for w in args.workers if w <= 2]:
            stats = measured.get((name, workers))
            if stats is None:
                continue
            passed = stats.req_s >= 1500 and stats.errors == 0 if workers == 1 else None
            figures.append(
                figure(
                    "issue-4",
                    name,
                    endpoint=f"GET {ENDPOINTS[name]}",
                    workers=workers,
                    target="≥ 1 500 req/s" if workers == 1 else None,
                    ratio=ratio(stats.req_s, UNLEASH_PAT_REQ_S),
                    ratio_of="req/s / Unleash 8.2 with a PAT (300 req/s)",
                    **{"pass": passed},
                    **common,
                    **load_fields(stats),
                )
            )
    return figures


def _line(name: str, workers: int, s: LoadStats) -> str:
    return (
        f"  {name:<30} {workers}w  {s.req_s:9.1f} req/s  p50 {s.p50_ms:7.2f} ms  "
        f"p99 {s.p99_ms:7.2f} ms  errors {s.errors}  ({s.tool})"
    )


# --- fastapi-users -------------------------------------------------------------------------------


def run_fastapi_users(
    args: argparse.Namespace, steps: Steps, logs: Path, tenantry_self: Figure | None
) -> list[Figure]:
    steps.start("fastapi-users: virtualenv")
    fastapi_users_venv.ensure()
    figures: list[Figure] = []
    for strategy in fastapi_users_venv.STRATEGIES:
        steps.start(f"fastapi-users: GET /users/me ({strategy})")
        with fresh_database("postgres", f"fu_{strategy}", pg_url=args.pg_url, migrate=False) as url:
            token = fastapi_users_venv.setup_token(url, strategy)
            with server(
                fastapi_users_venv.serve_command(1),
                workers=1,
                log_path=logs / f"fastapi-users-{strategy}.log",
                env=fastapi_users_venv.serve_env(url, strategy),
            ) as srv:
                r = httpx.get(srv.base + "/users/me", headers={"Authorization": f"Bearer {token}"})
                if r.status_code != 200:
                    raise RuntimeError(f"fastapi-users /users/me: HTTP {r.status_code}")
                stats = run_load(spec_for(srv.base, "/users/me", token, args), args.loadgen)
        name = f"fastapi-users GET /users/me ({strategy})"
        steps.say(_line(name, 1, stats))
        times = ratio(tenantry_self["req_s"] if tenantry_self else None, stats.req_s)
        figures.append(
            figure(
                "ceiling",
                name,
                endpoint="GET /users/me",
                db="postgres",
                workers=1,
                users=1,
                target="Tenantry's GET /v1/users/self ≥ 10x this",
                ratio=times,
                ratio_of="Tenantry GET /v1/users/self req/s / this req/s",
                note=(
                    f"fastapi-users 15.0.5, {strategy} strategy, bearer transport"
                    + ("" if tenantry_self else "; Tenantry not measured in this run")
                ),
                **{"pass": None if times is None else times >= 10},
                **load_fields(stats),
            )
        )
        steps.done()
    return figures


# --- listing, bulk load, RSS ---------------------------------------------------------------------

LIST_TARGET_MS = {"page": 20.0, "other": 50.0}


def run_listing(args: argparse.Namespace, steps: Steps, logs: Path) -> list[Figure]:
    largs = list_users.parse_args(
        [
            "--sizes",
            ",".join(label(s) for s in args.sizes),
            "--db",
            ",".join(args.dbs),
            "--pg-url",
            args.pg_url,
            "--requests",
            str(args.requests),
            "--warmup",
            str(args.list_warmup),
            "--loadgen",
            args.loadgen,
            "--no-save",
        ]
    )
    runs: list[list_users.Run] = []
    failures: list[str] = []
    for kind in args.dbs:
        for size in args.sizes:
            steps.start(f"listing: {kind} {label(size)}")
            rss = args.rss_seconds if kind == "postgres" and size == max(args.sizes) else 0.0
            try:
                runs.append(list_users.run_one(kind, size, largs, logs, steps.say, rss))
            except Exception as exc:
                failures.append(f"{kind} {label(size)}: {exc}")
                steps.say(f"[red]listing {kind} {label(size)} failed:[/red] {exc}")
            steps.done()
    figures = listing_figures(runs)
    if failures:
        raise PartialFailure(figures, "; ".join(failures))
    return figures


class PartialFailure(Exception):
    def __init__(self, figures: list[Figure], message: str) -> None:
        super().__init__(message)
        self.figures = figures


def listing_figures(runs: list[list_users.Run]) -> list[Figure]:
    figures: list[Figure] = []
    for run in runs:
        for m in run.measurements:
            target = None
            passed = None
            if run.db == "postgres" and m.kind in LIST_TARGET_MS:
                limit = LIST_TARGET_MS[m.kind]
                target = f"p95 ≤ {limit:g} ms"
                passed = m.p95_ms <= limit
            endpoint = unquote(str(httpx.URL(m.path, params=m.params)))
            if "/organizations/" in m.path:
                endpoint = endpoint.replace(
                    m.path.rsplit("/users", 1)[0], "/v1/organizations/{org}"
                )
            figures.append(
                figure(
                    "listing",
                    m.case,
                    endpoint=f"GET {endpoint}",
                    db=run.db,
                    workers=1,
                    users=run.users,
                    p50_ms=m.p50_ms,
                    p95_ms=m.p95_ms,
                    errors=0,
                    target=target,
                    **{"pass": passed},
                    note=None,
                )
            )
    # growth: largest / smallest size, per database and request
    for db in dict.fromkeys(r.db for r in runs):
        mine = sorted((r for r in runs if r.db == db), key=lambda r: r.users)
        if len(mine) < 2:
            continue
        small, big = mine[0], mine[-1]
        for m in big.measurements:
            base = next((x for x in small.measurements if x.kind == m.kind and _same(x, m)), None)
            if base is None:
                continue
            growth = ratio(m.p50_ms, base.p50_ms)
            applies = db == "postgres" and small.users <= 10_000 and big.users >= 1_000_000
            figures.append(
                figure(
                    "listing-growth",
                    m.case,
                    db=db,
                    workers=1,
                    users=big.users,
                    p50_ms=m.p50_ms,
                    ratio=growth,
                    ratio_of=f"p50 at {label(big.users)} / p50 at {label(small.users)}",
                    target="≤ 3x from 10k to 1M" if applies else None,
                    **{"pass": (growth is not None and growth <= 3) if applies else None},
                    note=None,
                )
            )
    for run in runs:
        applies = run.db == "postgres" and run.users >= 1_000_000
        figures.append(
            figure(
                "bulk-load",
                "bulk load (users, memberships, role bindings)",
                db=run.db,
                users=run.users,
                value=run.load_seconds,
                unit="s",
                target="≤ 60 s at 1M" if applies else None,
                **{"pass": run.load_seconds <= 60 if applies else None},
                note=None,
                bindings=run.bindings,
            )
        )
    for run in runs:
        if not run.rss:
            continue
        load = run.rss["load"]
        figures.append(
            figure(
                "rss",
                "peak RSS of a worker under list load",
                endpoint="GET /v1/organizations/{org}/users (all list requests, rotating)",
                db=run.db,
                workers=run.rss["workers"],
                users=run.users,
                req_s=load["req_s"],
                p50_ms=load["p50_ms"],
                p99_ms=load["p99_ms"],
                errors=load["errors"],
                value=run.rss["peak_mb"],
                unit="MB",
                target="≤ 200 MB",
                **{"pass": run.rss["peak_mb"] <= 200},
                note=f"RSS before the load {run.rss['before_mb']} MB; {load['seconds']} s "
                f"of load with {load['connections']} connections ({load['tool']})",
            )
        )
    return figures


def _same(a: list_users.Measurement, b: list_users.Measurement) -> bool:
    """The same request at two sizes (the offset case is named after its offset)."""
    return a.case == b.case or (a.case.startswith("offset=") and b.case.startswith("offset="))


# --- login ---------------------------------------------------------------------------------------


def run_login(args: argparse.Namespace, steps: Steps) -> list[Figure]:
    steps.start("login: users with passwords")
    rows, meta = login.measure(
        args.pg_url,
        args.login_workers,
        connections=args.connections,
        seconds=args.login_seconds,
        warmup=1.0,
        probe_connections=1,
        tool=args.loadgen,
        say=steps.say,
    )
    figures: list[Figure] = []
    for workers in args.login_workers:
        logins = login.find(rows, workers, "login")
        if logins:
            figures.append(
                figure(
                    "login",
                    f"sign-in ({args.connections} connections)",
                    endpoint="POST /tenantry/v1/auth/login",
                    db="postgres",
                    workers=workers,
                    users=2 * args.connections,
                    **_login_fields(logins),
                    note=(
                        f"{meta['argon2']}; rate limits raised for the bench; "
                        f"sent by {meta['loadgen']}"
                    ),
                )
            )
        for path in (login.SELF, login.HEALTH):
            alone = login.find(rows, workers, f"alone: GET {path}")
            under = login.find(rows, workers, f"under login load: GET {path}")
            if alone:
                figures.append(
                    figure(
                        "login",
                        f"GET {path} alone",
                        endpoint=f"GET {path}",
                        db="postgres",
                        workers=workers,
                        users=2 * args.connections,
                        **_login_fields(alone),
                    )
                )
            if under:
                figures.append(
                    figure(
                        "login",
                        f"GET {path} during logins",
                        endpoint=f"GET {path}",
                        db="postgres",
                        workers=workers,
                        users=2 * args.connections,
                        ratio=login.slowdown(rows, workers, path),
                        ratio_of="p99 under login load / p99 alone (one run)",
                        **_login_fields(under),
                    )
                )
    steps.done()
    return figures + _login_rounds(args, steps)


# The sign-in target is graded on paired rounds (bench/login_ab.py): one 10 s phase of each
# condition moves the ratio by ±0.5x from one run to the next on a shared 2-core machine.
# Beside the default (TENANTRY_PIN_EVENT_LOOP=auto, which pins a worker's loop when it holds
# its CPU's claim: each bench server has a claims directory of its own), the loop left
# wherever the kernel puts it: what the pinning buys.
UNPINNED = {"TENANTRY_PIN_EVENT_LOOP": "off"}


def _login_rounds(args: argparse.Namespace, steps: Steps) -> list[Figure]:
    steps.start("login: paired rounds for the p99 target")
    variants = [
        login_ab.Variant(f"{w} worker(s){', unpinned' if env else ''}", w, dict(env))
        for w in args.login_workers
        for env in ({}, UNPINNED)
    ]
    plan = login_ab.Plan(
        args.login_rounds, args.login_round_seconds, args.connections, args.loadgen
    )
    login_ab.run(variants, args.pg_url, plan, say=steps.say)
    steps.done()
    return [_round_figure(v, args) for v in variants if v.rounds]


def _round_figure(v: login_ab.Variant, args: argparse.Namespace) -> Figure:
    ratio = v.median_ratio()
    alone, under = v.medians()
    unpinned = bool(v.env)
    config = "TENANTRY_PIN_EVENT_LOOP=off" if unpinned else "default settings"
    return figure(
        "login",
        f"GET {login.SELF} during logins, paired rounds ({config})",
        endpoint=f"GET {login.SELF}",
        db="postgres",
        workers=v.workers,
        users=2 * args.connections,
        p99_ms=under,
        ratio=ratio,
        ratio_of=f"median over {len(v.rounds)} rounds of p99 under login load / p99 alone",
        target="reported: the event loop not pinned" if unpinned else _login_target(v.workers),
        **{"pass": None if unpinned else ratio is not None and ratio <= 2},
        note=f"p99 alone {alone:.2f} ms (median); ratio per round {v.ratios()}",
    )


def _login_target(workers: int) -> str:
    """Issue 5 asks for the p99 "while logins saturate a worker": the 1-worker row. With more
    workers every one of them is saturated, and on a machine with as many cores as workers the
    sign-ins' own database work takes CPU from the reads (docs/performance.md says how this
    was measured); that row keeps its mark, as a stricter check of our own."""
    if workers == 1:
        return "p99 ≤ 2x alone"
    return f"p99 ≤ 2x alone, all {workers} workers saturated (stricter than issue 5)"


def _login_fields(r: login.LoadResult) -> dict[str, Any]:
    errors = r.errors + sum(v for k, v in r.statuses.items() if k != "200")
    return {"req_s": r.rate, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "errors": errors}


# --- mix: many callers while roles change -------------------------------------------------------


def mix_cases(args: argparse.Namespace) -> list[mix.Case]:
    return mix.plan(
        args.mix_dbs, args.mix_workers, args.mix_callers, args.mix_rates, quick=args.quick
    )


def run_mix(args: argparse.Namespace, steps: Steps, logs: Path) -> list[Figure]:
    opts = mix.Options(args.connections, args.seconds, args.warmup, args.loadgen)
    run = mix.measure(
        mix_cases(args),
        opts,
        pg_url=args.pg_url,
        logs=logs,
        progress=steps,
        memory=args.mix_memory,
    )
    figures = mix_figures(run)
    if run.failures:
        raise PartialFailure(figures, "; ".join(run.failures))
    return figures


MIX_WRITE = "POST /v1/organizations/{org}/users/{user}/roles"


def mix_figures(run: mix.MixRun) -> list[Figure]:
    """A read row per case (ratio against the one-token baseline of the same database and
    worker count), a writer row per case with role changes, and the memory row."""
    baselines = {(r.case.db, r.case.workers): r for r in run.cases if r.case.baseline}
    reads, writes = [], []
    for r in run.cases:
        c, s, w = r.case, r.reads, r.writer
        base = baselines.get((c.db, c.workers))
        share = None if c.baseline or base is None else ratio(s.req_s, base.reads.req_s)
        probes = w.probes if w else 0
        seen = mix.Observed(s.req_s, s.p99_ms, s.errors, share, probes, w.stale if w else 0)
        target, passed = mix.grade(c, seen)
        notes = [r.note] if r.note else []
        if w is not None and w.examples:
            notes.append("writer: " + "; ".join(w.examples))
        if base is None and not c.baseline:
            notes.append("no baseline measured")
        reads.append(
            figure(
                "mix",
                c.name(),
                endpoint=f"GET {mix.SELF}",
                db=c.db,
                workers=c.workers,
                users=c.callers,
                ratio=share,
                ratio_of=None if c.baseline else "req/s / one-token req/s (same db, workers)",
                target=target,
                **{"pass": passed},
                note="; ".join(notes) or None,
                hit_pct=r.hit_pct,
                writes_s=w.achieved if w else None,
                write_p99_ms=w.p99_ms if w else None,
                stale=w.stale if w else None,
                probes=w.probes if w else None,
                dropped=r.counters["dropped"] if r.counters else None,
                load_average=r.load_average or None,
                **load_fields(s),
            )
        )
        if w is not None:
            writes.append(
                figure(
                    "mix-writes",
                    f"role changes, {c.name()}",
                    endpoint=MIX_WRITE,
                    db=c.db,
                    workers=c.workers,
                    users=c.callers,
                    req_s=w.achieved,
                    p50_ms=w.p50_ms,
                    p99_ms=w.p99_ms,
                    errors=w.errors,
                    ratio=ratio(w.achieved, w.rate),
                    ratio_of="achieved / asked rate",
                    target=mix.write_target(c),
                    **{"pass": mix.write_passed(c, w.achieved, w.p99_ms, w.errors)},
                    note=None,
                    **_server_phases(r.server_writes),
                )
            )
    figures = reads + writes
    if run.memory is not None:
        figures.append(_memory_figure(run.memory))
    return figures


MIX_RSS_MB = 250.0


def _server_phases(phases: dict[str, float] | None) -> dict[str, Any]:
    """The p99s of the workers' own timing of the role changes as columns (server total,
    before / in / after the write transaction), all of it under `detail`."""
    if phases is None:
        return {}
    p99 = {k: v for k, v in phases.items() if k.endswith("_p99_ms")}
    return {**p99, "detail": {"server_write_phases_ms": phases}}


def _memory_figure(m: mix.MemoryResult) -> Figure:
    return figure(
        "mix-memory",
        f"worker RSS with {label(m.callers)} callers, each used once",
        endpoint=f"GET {mix.SELF}",
        db="postgres",
        workers=1,
        users=m.callers,
        value=m.rss_after_mb,
        unit="MB",
        target=f"≤ {MIX_RSS_MB:g} MB",
        **{"pass": m.rss_after_mb <= MIX_RSS_MB and m.warm.errors == 0},
        note=(
            f"RSS {m.rss_before_mb} MB before the callers (one caller served); "
            f"{m.warm.ok:,} callers answered once at {m.warm.req_s:,.0f} req/s; "
            f"{m.entries if m.entries is None else format(m.entries, ',')} cache entries at "
            "shutdown; 1 in 50 callers read again: "
            f"{m.resampled_hit_pct}% hits"
        ),
        rss_before_mb=m.rss_before_mb,
        bytes_per_caller=m.bytes_per_caller,
    )


# --- scim: provisioning, group PATCH, filter at scale (issue 17) ------------------------------

SCIM_FILTER_P95_MS = 5.0
SCIM_PATCH_MS = 1000.0


def scim_options(args: argparse.Namespace, kind: str) -> scim.Options:
    return scim.Options(
        filter_users=args.scim_users[kind],
        provision=args.scim_provision,
        group=args.scim_group,
        patch=args.scim_patch,
        rounds=1 if args.quick else 3,
        seconds=args.seconds,
        warmup=args.warmup,
        workers=tuple(args.scim_workers if kind == "postgres" else args.scim_workers[:1]),
        loadgen=args.loadgen,
    )


def run_scim(args: argparse.Namespace, steps: Steps, logs: Path) -> list[Figure]:
    runs: list[scim.ScimRun] = []
    failures: list[str] = []
    for kind in args.scim_dbs:
        steps.start(f"scim: {kind} {label(args.scim_users[kind])}")
        try:
            runs.append(scim.run_one(kind, scim_options(args, kind), args.pg_url, logs, steps.say))
        except Exception as exc:
            failures.append(f"{kind}: {exc}")
            steps.say(f"[red]scim {kind} failed:[/red] {exc}")
        steps.done()
    figures = [f for run in runs for f in scim_figures(run)]
    if failures:
        raise PartialFailure(figures, "; ".join(failures))
    return figures


def scim_figures(run: scim.ScimRun) -> list[Figure]:
    """The filter (graded at 1M users on PostgreSQL), provisioning and the group PATCHes."""
    common = {"db": run.db, "users": run.users}
    at_scale = run.db == "postgres" and run.users >= 1_000_000
    plan = f"plan: {run.index or 'no index (scan)'}"
    figures = [
        figure(
            "scim",
            "bulk load (managed accounts)",
            value=run.load_seconds,
            unit="s",
            note="tenantry.devdata.bulk.load_organization(provisioned=True)",
            **common,
        )
    ]
    for w in run.runs:
        filtered = 'GET /scim/v2/Users?filter=userName eq "…"'
        p95 = w.filter_one.p95_ms
        figures.append(
            figure(
                "scim",
                "filter userName eq, 1 connection",
                endpoint=filtered,
                workers=w.workers,
                target=f"p95 ≤ {SCIM_FILTER_P95_MS:g} ms (PostgreSQL, 1M)" if at_scale else None,
                **{"pass": p95 <= SCIM_FILTER_P95_MS and not w.filter_one.errors}
                if at_scale
                else {},
                note=f"half existing, half made-up names; {plan}",
                **common,
                **load_fields(w.filter_one),
            )
        )
        figures.append(
            figure(
                "scim",
                f"filter userName eq, {w.filter.connections} connections",
                endpoint=filtered,
                workers=w.workers,
                note=plan,
                **common,
                **load_fields(w.filter),
            )
        )
        figures.append(
            figure(
                "scim",
                f"provisioning, {w.provision.connections} connections",
                endpoint="POST /scim/v2/Users",
                workers=w.workers,
                note=(
                    f"{w.provision.requests:,} distinct users, each once; "
                    f"{run.provisioned:,} of {run.expected:,} POSTed users in the database"
                ),
                **common,
                **load_fields(w.provision),
            )
        )
    if run.group is not None:
        g = run.group
        for name, times, method in (
            (f"PATCH adding {label(g.patch)} members", g.add_ms, "add"),
            (f"PATCH removing {label(g.patch)} (value list)", g.remove_ms, "rm"),
        ):
            worst = max(times) if times else None
            figures.append(
                figure(
                    "scim-groups",
                    name,
                    endpoint="PATCH /scim/v2/Groups/{id}",
                    workers=1,
                    value=worst,
                    unit="ms",
                    target=f"≤ {SCIM_PATCH_MS:g} ms" if method == "add" else None,
                    **{"pass": worst is not None and worst <= SCIM_PATCH_MS}
                    if method == "add"
                    else {},
                    note=f"group of {g.members:,} members; each round (ms): {times}",
                    **common,
                )
            )
        figures.append(
            figure(
                "scim-groups",
                f"POST /Groups with {label(g.members)} members",
                endpoint="POST /scim/v2/Groups",
                workers=1,
                value=g.create_ms,
                unit="ms",
                **common,
            )
        )
    return figures


# --- engine --------------------------------------------------------------------------------------


def run_engine(args: argparse.Namespace, steps: Steps) -> list[Figure]:
    from bench import engine

    steps.start("engine: permission checks")
    accepts_url = "admin_url" in inspect.signature(engine.run).parameters
    extra = {"admin_url": args.pg_url} if accepts_url else {}
    figures: list[Figure] = engine.run(args.quick, **extra)
    steps.done()
    return [{**figure("engine", str(f.get("name", "?"))), **f} for f in figures]


def engine_available() -> str | None:
    """Why bench.engine cannot run, or None."""
    try:
        from bench import engine
    except ImportError as exc:
        return f"bench/engine.py is not importable ({exc})"
    if not callable(getattr(engine, "run", None)):
        return "bench/engine.py has no run(quick) yet"
    return None


# --- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument("--quick", action="store_true", help="10k users, 5 s runs: a smoke test")
    parser.add_argument("--only", default="", help=f"comma-separated groups: {GROUP_NAMES}")
    parser.add_argument("--skip", default="", help="comma-separated groups to leave out")
    parser.add_argument("--pg-url", default=default_pg_url(), help="an admin URL of the server")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, help="per HTTP run (15; quick 5)")
    parser.add_argument("--warmup", type=float, help="before each HTTP run (2; quick 1)")
    parser.add_argument("--workers", help="for the http group (1,2,4; quick 1,2)")
    parser.add_argument("--http-users", help="organization size for the http group (10k)")
    parser.add_argument("--sizes", help="listing sizes (10k,100k,1M; quick 10k)")
    parser.add_argument("--db", help="listing databases (postgres,sqlite)")
    parser.add_argument("--requests", type=int, help="per listing case (200; quick 50)")
    parser.add_argument("--rss-seconds", type=float, help="RSS load (15; quick 5)")
    parser.add_argument("--login-workers", help="(1,2; quick 1)")
    parser.add_argument("--login-seconds", type=float, help="per login phase (10; quick 5)")
    parser.add_argument("--login-rounds", type=int, help="paired rounds, p99 target (3; quick 1)")
    parser.add_argument(
        "--login-round-seconds", type=float, help="per probe phase of a round (6; quick 3)"
    )
    parser.add_argument("--mix-callers", help="distinct callers (2k,20k; quick 2k)")
    parser.add_argument("--mix-rates", help="role changes per second (0,20,100)")
    parser.add_argument("--mix-workers", help="(1,2)")
    parser.add_argument("--mix-db", help="(postgres,sqlite)")
    parser.add_argument("--mix-memory", help="callers for the RSS figure, 0: none (100k; quick 0)")
    parser.add_argument(
        "--scim-users", help="managed accounts, postgres,sqlite (1M,100k; quick 100k,20k)"
    )
    parser.add_argument("--scim-provision", help="users POSTed per worker count (10k; quick 2k)")
    parser.add_argument("--scim-group", help="members of the PATCHed group (10k)")
    parser.add_argument("--scim-patch", help="members one PATCH adds and removes (1k)")
    parser.add_argument("--scim-workers", help="(1,2; quick 1)")
    parser.add_argument("--scim-db", help="(postgres,sqlite)")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", dest="docs", action="store_true", default=None)
    docs.add_argument("--no-docs", dest="docs", action="store_false")
    parser.add_argument("--no-save", action="store_true", help="no bench/results/*.json")
    args = parser.parse_args(argv)
    q = args.quick

    def ints(value: str | None, default: str) -> list[int]:
        return [parse_size(x) for x in (value or default).split(",") if x.strip()]

    args.seconds = args.seconds if args.seconds is not None else (5.0 if q else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if q else 2.0)
    args.workers = ints(args.workers, "1,2" if q else "1,2,4")
    args.http_users = ints(args.http_users, "10k")[0]
    args.sizes = ints(args.sizes, "10k" if q else "10k,100k,1M")
    args.dbs = [d.strip() for d in (args.db or "postgres,sqlite").split(",") if d.strip()]
    args.requests = args.requests or (50 if q else 200)
    args.list_warmup = 5 if q else 20
    args.rss_seconds = args.rss_seconds if args.rss_seconds is not None else (5.0 if q else 15.0)
    args.login_workers = ints(args.login_workers, "1" if q else "1,2")
    args.login_seconds = args.login_seconds or (5.0 if q else 10.0)
    args.login_rounds = args.login_rounds or (1 if q else 3)
    args.login_round_seconds = args.login_round_seconds or (3.0 if q else 6.0)
    args.mix_callers = ints(args.mix_callers, "2k" if q else "2k,20k")
    args.mix_rates = ints(args.mix_rates, "0,20,100")
    args.mix_workers = ints(args.mix_workers, "1,2")
    args.mix_dbs = [d.strip() for d in (args.mix_db or "postgres,sqlite").split(",") if d.strip()]
    args.mix_memory = ints(args.mix_memory, "0" if q else "100k")[0]
    if "postgres" not in args.mix_dbs:  # the memory figure is taken on PostgreSQL
        args.mix_memory = 0
    sizes = ints(args.scim_users, "100k,20k" if q else "1M,100k")
    args.scim_users = {"postgres": sizes[0], "sqlite": sizes[-1]}
    args.scim_provision = ints(args.scim_provision, "2k" if q else "10k")[0]
    args.scim_group = ints(args.scim_group, "10k")[0]
    args.scim_patch = ints(args.scim_patch, "1k")[0]
    args.scim_workers = ints(args.scim_workers, "1" if q else "1,2")
    args.scim_dbs = [d.strip() for d in (args.scim_db or "postgres,sqlite").split(",") if d.strip()]
    args.docs = (not q) if args.docs is None else args.docs
    only = {g.strip() for g in args.only.split(",") if g.strip()} or set(GROUP_NAMES)
    skip = {g.strip() for g in args.skip.split(",") if g.strip()}
    if unknown := (only | skip) - set(GROUP_NAMES):
        parser.error(f"unknown group(s) {sorted(unknown)}; groups are {GROUP_NAMES}")
    args.groups = [g for g in GROUP_NAMES if g in only and g not in skip]
    return args


def step_count(args: argparse.Namespace) -> int:
    counts = {
        "http": len(args.workers) * (len(ENDPOINTS) + 1),
        "fastapi-users": len(fastapi_users_venv.STRATEGIES),
        "listing": len(args.sizes) * len(args.dbs),
        "login": 1,
        "engine": 1,
        "mix": mix.steps(mix_cases(args), args.mix_memory) if "mix" in args.groups else 0,
        "scim": len(args.scim_dbs),
    }
    return sum(counts[g] for g in args.groups)


@contextmanager
def progress_bar() -> Iterator[Progress]:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield progress


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    args.loadgen_tool = choose_tool(args.loadgen)
    figures: list[Figure] = []
    not_run: list[dict[str, str]] = []
    failures: list[dict[str, str]] = []
    info = machine(args.pg_url)
    console.print(
        f"[bold]Tenantry benchmark suite[/bold] ({'quick' if args.quick else 'full'}): "
        f"{', '.join(args.groups)}; load generator {args.loadgen_tool}; "
        f"load average {info['load_average_at_start'][0]:.2f} on {info['cpus']} CPUs"
    )
    for group in GROUP_NAMES:
        if group not in args.groups:
            not_run.append({"group": group, "reason": "left out (--only / --skip)"})
    if "engine" in args.groups and (why := engine_available()):
        args.groups.remove("engine")
        not_run = [n for n in not_run if n["group"] != "engine"]
        not_run.append({"group": "engine", "reason": why})
    with tempfile.TemporaryDirectory(prefix="tenantry-suite-") as tmp, progress_bar() as bar:
        logs = Path(tmp)
        steps = Steps(bar, step_count(args))
        for group in args.groups:
            try:
                if group == "http":
                    figures += run_http(args, steps, logs)
                elif group == "fastapi-users":
                    mine = next(
                        (
                            f
                            for f in figures
                            if f["group"] == "ceiling" and f["endpoint"] == f"GET {SELF}"
                        ),
                        None,
                    )
                    figures += run_fastapi_users(args, steps, logs, mine)
                elif group == "listing":
                    figures += run_listing(args, steps, logs)
                elif group == "login":
                    figures += run_login(args, steps)
                elif group == "engine":
                    figures += run_engine(args, steps)
                elif group == "mix":
                    figures += run_mix(args, steps, logs)
                elif group == "scim":
                    figures += run_scim(args, steps, logs)
            except PartialFailure as exc:
                figures += exc.figures
                failures.append({"group": group, "error": str(exc)})
            except Exception as exc:
                steps.say(f"[red]{group} failed:[/red] {exc}")
                console.print(traceback.format_exc(), markup=False)
                failures.append({"group": group, "error": str(exc).splitlines()[0][:300]})
        steps.start("done")

    settings = {
        k: v
        for k, v in vars(args).items()
        if k not in ("pg_url", "only", "skip", "no_save", "docs", "db", "mix_db", "scim_db")
    }
    results: dict[str, Any] = {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - t0, 1),
        "machine": info,
        "load_average_at_end": list(os.getloadavg()),
        "settings": settings,
        "figures": figures,
        "not_run": not_run,
        "failures": failures,
    }
    name = f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    results["file"] = name
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / name).write_text(json.dumps(results, indent=2, default=_json_default))
        console.print(f"results: bench/results/{name}")
    if args.docs:
        for path in report.write_docs(results):
            console.print(f"wrote {path}")
    print(report.markdown(results))
    met, missed, other = report.summary(figures)
    console.print(
        f"{met} targets met, {missed} missed, {other} without target; "
        f"{len(failures)} group(s) failed; {results['seconds']:.0f} s"
    )
    return 1 if failures else 0


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
