"""Benchmark: password sign-in (argon2id) through a real server, and whether it stalls others.

    python -m bench.login                                  # 1 and 2 workers, 20 conns, 10 s
    python -m bench.login --workers 1 --connections 8 --seconds 5

For each worker count: a fresh PostgreSQL database of its own (created here, dropped at the
end), `--users` users with passwords set through the services (accounts.set_password, with the
configured TENANTRY_ARGON2_* parameters), `tenantry serve --workers W` in a subprocess, then
three phases, each driven by separate load-generator processes:

  1. login             POST /tenantry/v1/auth/login with N connections for T seconds, from
                       bench.loadgen (wrk where installed, else its asyncio client; --loadgen),
                       rotating through the accounts
  2. alone             the probe alone (this module re-run with --load-spec: an asyncio httpx
                       client): --probe-connections connections, each alternating
                       GET /v1/users/self and GET /healthz, for T seconds
  3. under login load  the same probe while phase 1's login load saturates the server

The sign-ins come from wrk rather than from a Python client because the load generator shares
the machine's CPUs with the probe: a Python client answering 20 connections ran in bursts of
about 2 ms, and `perf sched` showed the probe client waiting behind those bursts for most of
its longest delays (docs/performance.md). The probe stays an ordinary Python HTTP client.

Phase 3 against phase 2 shows whether hashing blocks the event loop (argon2 runs in worker
threads; the p99 of GET /v1/users/self should stay within about 2x). GET /healthz touches no
table and borrows no pooled connection for long, so it isolates the event loop from waits for
the database pool.

The per-account (10/min) and per-address (30/min) sign-in limits would refuse nearly every
login of a load test, so the server is started with TENANTRY_LOGIN_RATE_PER_ACCOUNT and
TENANTRY_LOGIN_RATE_PER_IP raised to 100000; the output says so. Latency is client-side, the
whole HTTP round trip on 127.0.0.1; requests are counted when they start inside the measured
window (after --warmup seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench import loadgen
from bench.common import ROOT, default_pg_url, fresh_database, mint_token, percentile, server

LOGIN = "/tenantry/v1/auth/login"
SELF = "/v1/users/self"
HEALTH = "/healthz"
PATHS = {"self": SELF, "healthz": HEALTH}
RATE_LIMIT_OVERRIDE = 100_000  # the highest the settings accept
console = Console(stderr=True)


# --- the load generator (a separate process) --------------------------------------------------


@dataclass
class LoadResult:
    mode: str
    connections: int
    seconds: float
    ok: int
    statuses: dict[str, int]
    errors: int
    rate: float  # successful requests per second in the window
    p50_ms: float
    p99_ms: float
    max_ms: float


async def generate(spec: dict[str, Any]) -> list[LoadResult]:
    """The probe: N tasks, one keep-alive connection each, alternating GET /v1/users/self and
    GET /healthz (no database, so it shows the event loop alone) until the window closes."""
    n = int(spec["connections"])
    warmup, seconds = float(spec["warmup"]), float(spec["seconds"])
    auth = {"Authorization": f"Bearer {spec.get('token', '')}"}
    samples: list[tuple[str, float, float, int]] = []  # (what, start offset, ms, status)
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=spec["base"], limits=limits, timeout=120.0) as client:
        t0 = time.perf_counter()
        end = t0 + warmup + seconds

        async def send(what: str) -> None:
            start = time.perf_counter()
            try:
                if what == "self":
                    r = await client.get(SELF, headers=auth)
                else:
                    r = await client.get(HEALTH)
            except httpx.HTTPError:
                errors[what] += 1
                return
            ms = (time.perf_counter() - start) * 1000
            samples.append((what, start - t0, ms, r.status_code))

        async def one() -> None:
            while time.perf_counter() < end:
                await send("self")
                await send("healthz")

        await asyncio.gather(*(one() for _ in range(n)))
    results = []
    for what in ("self", "healthz"):
        window = [s for s in samples if s[0] == what and s[1] >= warmup]
        ok = sorted(ms for _, _, ms, status in window if status == 200)
        results.append(
            LoadResult(
                mode=what,
                connections=n,
                seconds=seconds,
                ok=len(ok),
                statuses=dict(Counter(str(status) for *_, status in window)),
                errors=errors[what],
                rate=round(len(ok) / seconds, 1),
                p50_ms=round(percentile(ok, 50), 1),
                p99_ms=round(percentile(ok, 99), 1),
                max_ms=round(ok[-1], 1) if ok else float("nan"),
            )
        )
    return results


def load_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    results = asyncio.run(generate(spec))
    print(json.dumps([asdict(r) for r in results]))
    return 0


# --- the orchestrator -------------------------------------------------------------------------


async def make_accounts(url: str, count: int) -> tuple[list[list[str]], str]:
    """Users with passwords (hashed with the configured argon2 parameters), and a personal token
    for one more user who is not among them, all through the services. The probe reads as that
    user: a sign-in rewrites the signing-in user's row (last sign-in, failure count), which
    rightly ends that user's cached answers on every worker, and the probe is there to see what
    other people's sign-ins cost a reader."""
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.directory import accounts, users
    from tenantry.directory.users import UserFields
    from tenantry.identity.principals import system_principal
    from tenantry.identity.security import Security

    settings = load_settings(database_url=url)
    hasher = Security.from_settings(settings).hasher
    database = Database(settings)
    made: list[list[str]] = []
    try:
        async with database.transaction() as db:
            actor = system_principal()
            for i in range(count):
                username = f"bench{i}@example.com"
                password = f"bench-{secrets.token_hex(8)}"
                user = await users.create_user(db, actor, username, UserFields(full_name=""))
                await accounts.set_password(db, hasher, actor, user.id, password)
                made.append([username, password])
            reader = await users.create_user(
                db, actor, "probe@example.com", UserFields(full_name="Probe")
            )
    finally:
        await database.dispose()
    return made, await mint_token(url, reader.id)


def rate_limit_env() -> dict[str, str]:
    return {
        "TENANTRY_LOGIN_RATE_PER_ACCOUNT": str(RATE_LIMIT_OVERRIDE),
        "TENANTRY_LOGIN_RATE_PER_IP": str(RATE_LIMIT_OVERRIDE),
    }


def start_probe(spec: dict[str, Any], workdir: Path) -> loadgen.Running[list[LoadResult]]:
    """The probe (`generate`) in a process of its own: this module re-run with --load-spec."""
    path = workdir / f"spec-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(spec))
    command = [sys.executable, "-m", "bench.login", "--load-spec", str(path)]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    budget = float(spec["warmup"]) + float(spec["seconds"]) + 120
    return loadgen.Running(proc, _parse_probe, budget, path)


def _parse_probe(out: str) -> list[LoadResult]:
    return [LoadResult(**r) for r in json.loads(out.strip().splitlines()[-1])]


@dataclass
class Row:
    workers: int
    phase: str
    result: LoadResult


def run_workers(
    url: str, workers: int, accounts: list[list[str]], token: str, args: argparse.Namespace
) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-login-") as tmp:
        workdir = Path(tmp)
        log = workdir / "server.log"
        with server(url=url, workers=workers, log_path=log, env=rate_limit_env()) as srv:
            base = srv.base
            probe = {"base": base, "warmup": args.warmup, "seconds": args.seconds}
            probe |= {"connections": args.probe_connections, "token": token}
            rows = []

            def add(phase: str, results: list[LoadResult]) -> None:
                for r in results:
                    label = phase if r.mode == "login" else f"{phase}: GET {PATHS[r.mode]}"
                    rows.append(Row(workers, label, r))

            def sign_ins(warmup: float, seconds: float) -> loadgen.LoadSpec:
                return login_spec(base, accounts, args.connections, warmup, seconds)

            console.print(f"[bold]{workers} worker(s)[/bold]: login load…")
            signed_in = loadgen.run_load(sign_ins(args.warmup, args.seconds), args.loadgen)
            add("login", [as_result(signed_in)])

            console.print(f"[bold]{workers} worker(s)[/bold]: probe alone…")
            add("alone", start_probe(probe, workdir).result())

            console.print(f"[bold]{workers} worker(s)[/bold]: probe under login load…")
            # The login load starts first and outlasts the probe at both ends.
            margin = args.warmup + 1.0
            loader = loadgen.start_load(sign_ins(margin, args.seconds + 2 * margin), args.loadgen)
            time.sleep(margin)
            add("under login load", start_probe(probe, workdir).result())
            add("login (during probe)", [as_result(loader.result())])
            return rows


def login_spec(
    base: str, accounts: list[list[str]], connections: int, warmup: float, seconds: float
) -> loadgen.LoadSpec:
    """Sign-ins on `connections` connections, rotating through the accounts."""
    bodies = [json.dumps({"username": user, "password": pw}) for user, pw in accounts]
    return loadgen.LoadSpec(
        base,
        [LOGIN],
        {"Content-Type": "application/json"},
        connections,
        seconds,
        warmup,
        threads=1,  # 20 connections at tens of sign-ins a second: one thread is plenty
        timeout=120.0,
        method="POST",
        bodies=bodies,
    )


def as_result(stats: loadgen.LoadStats) -> LoadResult:
    """bench.loadgen's summary as a row of this benchmark. wrk counts non-2xx answers without
    telling them apart; the asyncio client reports each status."""
    statuses = {k.removeprefix("status_"): v for k, v in stats.detail.items() if "status_" in k}
    if not statuses:  # wrk
        statuses = {"200": stats.ok}
        if stats.requests > stats.ok:
            statuses["non-2xx"] = stats.requests - stats.ok
    failed = sum(v for k, v in statuses.items() if not k.startswith("2"))
    return LoadResult(
        mode="login",
        connections=stats.connections,
        seconds=stats.seconds,
        ok=stats.ok,
        statuses=statuses,
        errors=stats.errors - failed,  # transport errors and timeouts
        rate=stats.req_s,
        p50_ms=round(stats.p50_ms, 1),
        p99_ms=round(stats.p99_ms, 1),
        max_ms=round(stats.max_ms, 1),
    )


def render(rows: list[Row]) -> Table:
    table = Table(title="Tenantry login benchmark (client-side latency, successful requests)")
    for name in ("workers", "phase", "conns", "ok", "ok/s", "p50 ms", "p99 ms", "max ms"):
        table.add_column(name, justify="left" if name == "phase" else "right")
    table.add_column("other", justify="left")
    for row in rows:
        r = row.result
        other = {k: v for k, v in r.statuses.items() if k != "200"}
        if r.errors:
            other["transport errors"] = r.errors
        table.add_row(
            str(row.workers),
            row.phase,
            str(r.connections),
            str(r.ok),
            f"{r.rate:.1f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}",
            ", ".join(f"{k}: {v}" for k, v in other.items()) or "-",
        )
    return table


def measure(
    pg_url: str,
    worker_counts: list[int],
    *,
    connections: int = 20,
    seconds: float = 10.0,
    warmup: float = 1.0,
    probe_connections: int = 1,
    users: int = 0,
    tool: str = "auto",
    say: Callable[[str], None] | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    """The three phases for each worker count, on a fresh PostgreSQL database of their own.
    Returns the rows and what to say about them (argon2 parameters, load average, command)."""
    from tenantry.config import load_settings

    say = say or console.print
    users = users or 2 * connections
    args = argparse.Namespace(
        connections=connections,
        seconds=seconds,
        warmup=warmup,
        probe_connections=probe_connections,
        loadgen=loadgen.choose_tool(tool),
    )
    settings = load_settings()
    argon2 = (
        f"argon2id t={settings.argon2_time_cost} m={settings.argon2_memory_kib} KiB "
        f"p={settings.argon2_parallelism}"
    )
    command = shlex.join(
        [
            "python",
            "-m",
            "bench.login",
            "--workers",
            ",".join(map(str, worker_counts)),
            "--connections",
            str(connections),
            "--seconds",
            f"{seconds:g}",
            "--warmup",
            f"{warmup:g}",
            "--probe-connections",
            str(probe_connections),
            "--users",
            str(users),
            "--loadgen",
            args.loadgen,
        ]
    )
    rows: list[Row] = []
    load_before = os.getloadavg()
    with fresh_database("postgres", "login", pg_url=pg_url) as url:
        say(f"login: creating {users} users with passwords ({argon2})…")
        started = time.perf_counter()
        accounts, token = asyncio.run(make_accounts(url, users))
        say(f"  done in {time.perf_counter() - started:.1f}s")
        for workers in worker_counts:
            rows += run_workers(url, workers, accounts, token, args)
    meta = {
        "command": command,
        "argon2": argon2,
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "rate_limits": RATE_LIMIT_OVERRIDE,
        "loadgen": args.loadgen,
    }
    return rows, meta


def find(rows: list[Row], workers: int, phase: str) -> LoadResult | None:
    return next((r.result for r in rows if r.workers == workers and r.phase == phase), None)


def slowdown(rows: list[Row], workers: int, path: str = SELF) -> float | None:
    """p99 of GET `path` under login load / its p99 alone."""
    alone = find(rows, workers, f"alone: GET {path}")
    under = find(rows, workers, f"under login load: GET {path}")
    if alone is None or under is None or not alone.p99_ms or alone.p99_ms != alone.p99_ms:
        return None
    return round(under.p99_ms / alone.p99_ms, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TENANTRY_TEST_POSTGRES_URL") or default_pg_url(),
        help="PostgreSQL server to create the bench database on (postgresql+asyncpg://…)",
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--connections", type=int, default=20, help="concurrent logins")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--probe-connections", type=int, default=1, help="probe connections")
    parser.add_argument("--users", type=int, default=0, help="accounts (default 2 x conns)")
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="what sends the sign-ins (auto: wrk where installed)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--load-spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_spec:
        return load_main(args.load_spec)

    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    console.print(f"{os.cpu_count()} CPUs; {platform.python_version()}")
    console.print(
        f"[yellow]sign-in rate limits raised for the bench:[/yellow] "
        f"TENANTRY_LOGIN_RATE_PER_ACCOUNT={RATE_LIMIT_OVERRIDE} "
        f"TENANTRY_LOGIN_RATE_PER_IP={RATE_LIMIT_OVERRIDE} (defaults 10 and 30 per minute)"
    )
    rows, meta = measure(
        args.pg_url,
        worker_counts,
        connections=args.connections,
        seconds=args.seconds,
        warmup=args.warmup,
        probe_connections=args.probe_connections,
        users=args.users,
        tool=args.loadgen,
    )
    out = Console(width=max(Console().width, 110))
    out.print(render(rows))
    out.print(
        f"password hashing: {meta['argon2']}; {os.cpu_count()} CPUs on this machine, shared by "
        "the server, PostgreSQL and the load generators"
    )
    load = meta["load_average"]
    out.print(
        "load average (1/5/15 min) before "
        + "/".join(f"{x:.2f}" for x in load["before"])
        + ", after "
        + "/".join(f"{x:.2f}" for x in load["after"])
        + ": other work on the machine skews these figures"
    )
    for workers in worker_counts:
        for path in (SELF, HEALTH):
            ratio = slowdown(rows, workers, path)
            under = find(rows, workers, f"under login load: GET {path}")
            alone = find(rows, workers, f"alone: GET {path}")
            if ratio is not None and under and alone:
                out.print(
                    f"{workers} worker(s): GET {path} p99 under login load is {ratio:.1f}x its "
                    f"p99 alone ({under.p99_ms:.1f} ms vs {alone.p99_ms:.1f} ms)"
                )
    out.print(f"command: {meta['command']}", soft_wrap=True)
    if args.json:
        document = {
            **meta,
            "rows": [{"workers": r.workers, "phase": r.phase, **asdict(r.result)} for r in rows],
        }
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
