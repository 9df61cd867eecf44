"""Benchmark: password sign-in (argon2id) through a real server, and whether it stalls others.

    python bench/login.py                                  # 1 and 2 workers, 20 conns, 10 s
    python bench/login.py --workers 1 --connections 8 --seconds 5

For each worker count: a fresh PostgreSQL database of its own (created here, dropped at the
end), `--users` users with passwords set through the services (accounts.set_password, with the
configured TENANTRY_ARGON2_* parameters), `tenantry serve --workers W` in a subprocess, then
three phases, each driven by a separate load-generator process (this file re-run with
--load-spec: an asyncio httpx client with N concurrent keep-alive connections, closed loop):

  1. login             POST /tenantry/v1/auth/login with N connections for T seconds
  2. alone             the probe alone: --probe-connections connections, each alternating
                       GET /v1/users/self and GET /healthz, for T seconds
  3. under login load  the same probe while phase 1's login load saturates the server

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
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
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


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, min(len(sorted_ms), round(q / 100 * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


async def generate(spec: dict[str, Any]) -> list[LoadResult]:
    """N tasks, one keep-alive connection each, looping until the window closes. Mode "login"
    signs in; mode "probe" alternates GET /v1/users/self and GET /healthz (no database, so it
    shows the event loop alone)."""
    n, mode = int(spec["connections"]), spec["mode"]
    warmup, seconds = float(spec["warmup"]), float(spec["seconds"])
    accounts: list[list[str]] = spec.get("accounts", [])
    auth = {"Authorization": f"Bearer {spec.get('token', '')}"}
    samples: list[tuple[str, float, float, int]] = []  # (what, start offset, ms, status)
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=spec["base"], limits=limits, timeout=120.0) as client:
        t0 = time.perf_counter()
        end = t0 + warmup + seconds

        async def send(what: str, k: int) -> None:
            start = time.perf_counter()
            try:
                if what == "login":
                    username, password = accounts[k % len(accounts)]
                    r = await client.post(LOGIN, json={"username": username, "password": password})
                elif what == "self":
                    r = await client.get(SELF, headers=auth)
                else:
                    r = await client.get(HEALTH)
            except httpx.HTTPError:
                errors[what] += 1
                return
            ms = (time.perf_counter() - start) * 1000
            samples.append((what, start - t0, ms, r.status_code))

        async def one(i: int) -> None:
            k = i
            while time.perf_counter() < end:
                if mode == "login":
                    await send("login", k)
                    k += n  # each task rotates through its own accounts
                else:
                    await send("self", k)
                    await send("healthz", k)

        await asyncio.gather(*(one(i) for i in range(n)))
    results = []
    for what in ("login",) if mode == "login" else ("self", "healthz"):
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _pg_admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def fresh_database(pg_url: str) -> Iterator[str]:
    from tenantry.db.migrate import upgrade

    name = f"tenantry_bench_login_{secrets.token_hex(4)}"
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    asyncio.run(_pg_admin(pg_url, f'CREATE DATABASE "{name}"'))
    try:
        url = f"{pg_url.rpartition('/')[0]}/{name}"
        upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_admin(pg_url, drop))


async def make_accounts(url: str, count: int) -> tuple[list[list[str]], str]:
    """Users with passwords (hashed with the configured argon2 parameters) and a personal
    token for the first one, all through the services."""
    from tenantry.access import accounts, personal_tokens
    from tenantry.access.principals import system_principal
    from tenantry.access.security import Security
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.directory import users
    from tenantry.directory.users import UserFields

    settings = load_settings(database_url=url)
    hasher = Security.from_settings(settings).hasher
    database = Database(settings)
    made: list[list[str]] = []
    try:
        async with database.transaction() as db:
            actor = system_principal()
            first_id = ""
            for i in range(count):
                username = f"bench{i}@example.com"
                password = f"bench-{secrets.token_hex(8)}"
                user = await users.create_user(db, actor, username, UserFields(full_name=""))
                await accounts.set_password(db, hasher, actor, user.id, password)
                made.append([username, password])
                first_id = first_id or user.id
            minted = await personal_tokens.create_personal_token(
                db, actor, first_id, name="bench", expires_in_days=1
            )
            return made, minted.secret
    finally:
        await database.dispose()


def server_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "TENANTRY_DATABASE_URL": url,
        "TENANTRY_LOG_LEVEL": "WARNING",
        "TENANTRY_LOGIN_RATE_PER_ACCOUNT": str(RATE_LIMIT_OVERRIDE),
        "TENANTRY_LOGIN_RATE_PER_IP": str(RATE_LIMIT_OVERRIDE),
    }


@contextmanager
def server(url: str, workers: int, log_path: Path) -> Iterator[str]:
    """`tenantry serve --workers W` in a subprocess; stopped by its own pid."""
    port = free_port()
    command = [sys.executable, "-m", "tenantry", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=server_env(url), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def start_load(spec: dict[str, Any], workdir: Path) -> subprocess.Popen[str]:
    path = workdir / f"spec-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(spec))
    command = [sys.executable, str(Path(__file__).resolve()), "--load-spec", str(path)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def finish_load(proc: subprocess.Popen[str], timeout: float) -> list[LoadResult]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise RuntimeError("load generator did not finish in time") from None
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {proc.returncode}")
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
        with server(url, workers, workdir / "server.log") as base:
            common = {"base": base, "warmup": args.warmup, "seconds": args.seconds}
            login = {**common, "mode": "login", "connections": args.connections}
            login["accounts"] = accounts
            probe = {**common, "mode": "probe", "connections": args.probe_connections}
            probe["token"] = token
            budget = args.warmup + args.seconds + 120
            rows = []

            def add(phase: str, results: list[LoadResult]) -> None:
                for r in results:
                    label = phase if r.mode == "login" else f"{phase}: GET {PATHS[r.mode]}"
                    rows.append(Row(workers, label, r))

            console.print(f"[bold]{workers} worker(s)[/bold]: login load…")
            add("login", finish_load(start_load(login, workdir), budget))

            console.print(f"[bold]{workers} worker(s)[/bold]: probe alone…")
            add("alone", finish_load(start_load(probe, workdir), budget))

            console.print(f"[bold]{workers} worker(s)[/bold]: probe under login load…")
            # The login load starts first and outlasts the probe at both ends.
            margin = args.warmup + 1.0
            under = {**login, "warmup": margin, "seconds": args.seconds + 2 * margin}
            loader = start_load(under, workdir)
            time.sleep(margin)
            probing = start_load(probe, workdir)
            add("under login load", finish_load(probing, budget))
            add("login (during probe)", finish_load(loader, budget + 2 * margin))
            return rows


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TENANTRY_TEST_POSTGRES_URL") or DEFAULT_PG,
        help="PostgreSQL server to create the bench database on (postgresql+asyncpg://…)",
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--connections", type=int, default=20, help="concurrent logins")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--probe-connections", type=int, default=1, help="probe connections")
    parser.add_argument("--users", type=int, default=0, help="accounts (default 2 x conns)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--load-spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_spec:
        return load_main(args.load_spec)

    from tenantry.config import load_settings

    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    args.users = args.users or 2 * args.connections
    settings = load_settings()
    argon2 = (
        f"argon2id t={settings.argon2_time_cost} m={settings.argon2_memory_kib} KiB "
        f"p={settings.argon2_parallelism}"
    )
    command = shlex.join(
        [
            "python",
            "bench/login.py",
            "--workers",
            ",".join(map(str, worker_counts)),
            "--connections",
            str(args.connections),
            "--seconds",
            f"{args.seconds:g}",
            "--warmup",
            f"{args.warmup:g}",
            "--probe-connections",
            str(args.probe_connections),
            "--users",
            str(args.users),
        ]
    )
    console.print(f"{argon2}; {os.cpu_count()} CPUs; {platform.python_version()}")
    console.print(
        f"[yellow]sign-in rate limits raised for the bench:[/yellow] "
        f"TENANTRY_LOGIN_RATE_PER_ACCOUNT={RATE_LIMIT_OVERRIDE} "
        f"TENANTRY_LOGIN_RATE_PER_IP={RATE_LIMIT_OVERRIDE} (defaults 10 and 30 per minute)"
    )
    rows: list[Row] = []
    load_before = os.getloadavg()
    with fresh_database(args.pg_url) as url:
        console.print(f"creating {args.users} users with passwords…")
        started = time.perf_counter()
        accounts, token = asyncio.run(make_accounts(url, args.users))
        console.print(f"  done in {time.perf_counter() - started:.1f}s")
        for workers in worker_counts:
            rows += run_workers(url, workers, accounts, token, args)

    out = Console(width=max(Console().width, 110))
    out.print(render(rows))
    out.print(
        f"password hashing: {argon2}; {os.cpu_count()} CPUs on this machine, shared by the "
        "server, PostgreSQL and the load generators"
    )
    load_after = os.getloadavg()
    out.print(
        "load average (1/5/15 min) before "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + "/".join(f"{x:.2f}" for x in load_after)
        + ": other work on the machine skews these figures"
    )
    out.print(
        f"server started with TENANTRY_LOGIN_RATE_PER_ACCOUNT={RATE_LIMIT_OVERRIDE} and "
        f"TENANTRY_LOGIN_RATE_PER_IP={RATE_LIMIT_OVERRIDE} (sign-in rate limits out of the way)"
    )
    for workers in worker_counts:
        for path in (SELF, HEALTH):
            alone = next(
                r.result for r in rows if r.workers == workers and r.phase == f"alone: GET {path}"
            )
            under = next(
                r.result
                for r in rows
                if r.workers == workers and r.phase == f"under login load: GET {path}"
            )
            if alone.p99_ms > 0:
                out.print(
                    f"{workers} worker(s): GET {path} p99 under login load is "
                    f"{under.p99_ms / alone.p99_ms:.1f}x its p99 alone "
                    f"({under.p99_ms:.1f} ms vs {alone.p99_ms:.1f} ms)"
                )
    out.print(f"command: {command}", soft_wrap=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "argon2": argon2,
                    "cpus": os.cpu_count(),
                    "load_average": {"before": load_before, "after": load_after},
                    "rate_limits": RATE_LIMIT_OVERRIDE,
                    "rows": [
                        {"workers": r.workers, "phase": r.phase, **asdict(r.result)} for r in rows
                    ],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
