"""Benchmark: does a wrong password for a real account answer as fast as an unknown account?

    python -m bench.signin_timing                        # PostgreSQL and SQLite, 50 tries
    python -m bench.signin_timing --db sqlite --tries 200

Issue 14, finding 11: a wrong password for a real account used to answer 1-4 ms slower than an
unknown account (it counted the failure with an UPDATE of its own, which also made every
process drop its caches; through ECE's HTTP Basic it committed while the unknown account's
request rolled back), so timing told which accounts exist. For each database: a fresh database
(created here, dropped at the end) with one account whose password is set through the services
with the configured TENANTRY_ARGON2_* parameters, `tenantry serve` in a subprocess, then for
each way to present a password (native `POST /tenantry/v1/auth/login`, ECE
`POST /api/v1/users/auth/_login`, ECE HTTP Basic on `GET /api/v1/users/auth`, Unleash
`POST /auth/simple/login`) `--tries` refusals of the known account with a wrong password and
`--tries` of an unknown account, alternated (so that drift in the machine's load falls on both
alike), after a few unmeasured ones. Printed: the two medians, their difference and their
ratio (known / unknown; 1.00 is the goal), and the median of the differences within each
back-to-back pair with its 95% bootstrap interval (which drift in the machine's load disturbs
least; an interval that holds 0 means no difference was seen). Latency is client-side, one
keep-alive connection on 127.0.0.1.

The per-account and per-address sign-in limits would refuse most of these, and the lockout
would lock the account after five, so the server runs with both limits raised to 100000 and
the lockout threshold at 100 (`--tries` up to 95 keep the account unlocked; beyond, a locked
account is measured, which runs the same statements too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.common import default_pg_url, fresh_database, server

console = Console(stderr=True)
USERNAME = "known@example.com"
UNKNOWN = "unknown@example.com"
PASSWORD = f"bench-{secrets.token_hex(8)}"
WRONG = f"wrong-{secrets.token_hex(8)}"
WARMUP = 5
ENV = {
    "TENANTRY_LOGIN_RATE_PER_ACCOUNT": "100000",
    "TENANTRY_LOGIN_RATE_PER_IP": "100000",
    "TENANTRY_LOCKOUT_THRESHOLD": "100",
}
Attempt = Callable[[httpx.Client, str, str], httpx.Response]


def _json_login(path: str) -> Attempt:
    def attempt(client: httpx.Client, username: str, password: str) -> httpx.Response:
        return client.post(path, json={"username": username, "password": password})

    return attempt


def _basic(client: httpx.Client, username: str, password: str) -> httpx.Response:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return client.get("/api/v1/users/auth", headers={"Authorization": f"Basic {pair}"})


FACES: dict[str, Attempt] = {
    "native login": _json_login("/tenantry/v1/auth/login"),
    "ece _login": _json_login("/api/v1/users/auth/_login"),
    "ece basic": _basic,
    "unleash login": _json_login("/auth/simple/login"),
}


@dataclass
class Row:
    database: str
    face: str
    known_ms: float  # median, known account with a wrong password
    unknown_ms: float  # median, unknown account
    paired_ms: float  # median of (known - unknown) over the pairs sent back to back
    paired_ci: tuple[float, float]  # its 95% bootstrap interval

    @property
    def ratio(self) -> float:
        return self.known_ms / self.unknown_ms


def _bootstrap(differences: list[float], rounds: int = 2000) -> tuple[float, float]:
    """A 95% interval for the median of `differences` (percentile bootstrap, fixed seed)."""
    rng = random.Random(14)
    medians = sorted(
        statistics.median(rng.choices(differences, k=len(differences))) for _ in range(rounds)
    )
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds) - 1]


async def make_account(url: str) -> None:
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.directory import accounts, users
    from tenantry.directory.users import UserFields
    from tenantry.identity.principals import system_principal
    from tenantry.identity.security import Security

    settings = load_settings(database_url=url)
    hasher = Security.from_settings(settings).hasher
    database = Database(settings)
    try:
        async with database.transaction() as db:
            actor = system_principal()
            user = await users.create_user(db, actor, USERNAME, UserFields(full_name=""))
            await accounts.set_password(db, hasher, actor, user.id, PASSWORD)
    finally:
        await database.dispose()
        hasher.close()


def _timed(client: httpx.Client, attempt: Attempt, username: str) -> float:
    start = time.perf_counter()
    r = attempt(client, username, WRONG)
    elapsed = (time.perf_counter() - start) * 1000
    if r.status_code != 401:
        raise RuntimeError(f"expected a 401, got {r.status_code}: {r.text[:200]}")
    return elapsed


def measure(base: str, face: str, attempt: Attempt, tries: int, database: str) -> Row:
    known: list[float] = []
    unknown: list[float] = []
    with httpx.Client(base_url=base, timeout=60.0) as client:
        for _ in range(WARMUP):
            _timed(client, attempt, USERNAME)
            _timed(client, attempt, UNKNOWN)
        for i in range(tries):  # pairs back to back, either one first in turn
            first, second = (USERNAME, UNKNOWN) if i % 2 == 0 else (UNKNOWN, USERNAME)
            for username in (first, second):
                sample = _timed(client, attempt, username)
                (known if username == USERNAME else unknown).append(sample)
    differences = [k - u for k, u in zip(known, unknown, strict=True)]
    return Row(
        database,
        face,
        statistics.median(known),
        statistics.median(unknown),
        statistics.median(differences),
        _bootstrap(differences),
    )


def run(kind: str, tries: int, pg_url: str, hash_priority: str | None) -> list[Row]:
    rows: list[Row] = []
    env = ENV | ({"TENANTRY_HASH_PRIORITY": hash_priority} if hash_priority else {})
    with fresh_database(kind, "signin", pg_url=pg_url) as url:
        asyncio.run(make_account(url))
        log = Path(tempfile.gettempdir()) / f"tenantry-signin-timing-{kind}.log"
        with server(url=url, log_path=log, env=env) as running:
            for face, attempt in FACES.items():
                console.print(f"[dim]{kind}: {face}, {tries} tries each[/dim]")
                rows.append(measure(running.base, face, attempt, tries, kind))
    return rows


def show(rows: list[Row], tries: int) -> None:
    table = Table(title=f"Refused sign-ins: medians of {tries} tries each (ms)")
    columns = ("database", "face", "known, wrong password", "unknown", "ratio", "paired diff")
    for column in columns:
        table.add_column(column, justify="left" if column in ("database", "face") else "right")
    for r in rows:
        low, high = r.paired_ci
        table.add_row(
            r.database,
            r.face,
            f"{r.known_ms:.2f}",
            f"{r.unknown_ms:.2f}",
            f"{r.ratio:.3f}",
            f"{r.paired_ms:+.2f} [{low:+.2f}, {high:+.2f}]",
        )
    Console(width=120).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--tries", type=int, default=50, help="per account and face")
    parser.add_argument("--pg-url", default=default_pg_url())
    parser.add_argument(
        "--hash-priority",
        choices=["idle", "nice", "normal"],
        help="TENANTRY_HASH_PRIORITY of the server (default: its own default, idle); "
        "normal keeps other processes' load from stretching the hashes at random",
    )
    args = parser.parse_args(argv)
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    rows = [row for kind in kinds for row in run(kind, args.tries, args.pg_url, args.hash_priority)]
    show(rows, args.tries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
