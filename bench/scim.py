"""Benchmark: the SCIM face (issue 17) through a real server, as identity providers use it.

For every database: a fresh database, one organization bulk-loaded with `--filter-users`
accounts its identity provider manages (tenantry.devdata.bulk, `provisioned=True`: as if its
SCIM token had created them), a SCIM token of the organization, then per worker count:

1. `filter`: `GET /scim/v2/Users?filter=userName eq "…"` (what Okta sends before every
   create), rotating over random existing and made-up login names, `--connections`
   (default 4: modest) for `--seconds`; the SQL plan of that query (EXPLAIN) beside it.
2. provisioning: `--provision` distinct users POSTed to `/scim/v2/Users` (Okta/Entra-like
   bodies: userName, name, emails, externalId, active, the enterprise extension), each
   exactly once over `--post-connections` connections (bench.loadgen's asyncio client:
   wrk cannot send each body exactly once); then the accounts are counted in the database.
3. groups (first worker count only): `POST /scim/v2/Groups` with `--group` members, then
   `--rounds` rounds of one PATCH adding `--patch` more members (Okta's `add` of `members`)
   and one PATCH removing them again (Entra's `Remove` with a value list), each timed as the
   client sees it; the member count checked in the database after every PATCH.

    python -m bench.scim --db postgres --filter-users 100k --provision 2k

bench.suite runs this as its `scim` group (`--only scim [--quick]`) and grades the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import Server, fresh_database, label, parse_size, server
from bench.loadgen import LoadSpec, LoadStats, run_load
from tenantry.db.models import TeamMember, User
from tenantry.devdata.bulk import load_organization

SCIM = "/scim/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Marketing", "Support", "Legal")
Say = Callable[[str], None]


@dataclass
class Options:
    filter_users: int = 1_000_000  # accounts bulk-loaded into the token's organization
    provision: int = 10_000
    group: int = 10_000
    patch: int = 1_000
    rounds: int = 3
    connections: int = 4  # filter load: modest concurrency
    post_connections: int = 16
    seconds: float = 10.0
    warmup: float = 2.0
    names: int = 2_000  # distinct userNames the filter load rotates over (half made up)
    workers: tuple[int, ...] = (1, 2)
    loadgen: str = "auto"


@dataclass
class WorkerRun:
    workers: int
    filter_one: LoadStats  # one connection: the latency the target is about
    filter: LoadStats  # `connections` connections: req/s
    provision: LoadStats


@dataclass
class GroupRun:
    members: int
    patch: int
    create_ms: float
    add_ms: list[float] = field(default_factory=list)
    remove_ms: list[float] = field(default_factory=list)


@dataclass
class ScimRun:
    db: str
    users: int
    load_seconds: float
    plan: str  # the filter query's plan, one line per node
    index: str | None  # the index the plan reads users by, None: none
    runs: list[WorkerRun] = field(default_factory=list)
    group: GroupRun | None = None
    provisioned: int = 0  # POSTed users found in the database afterwards
    expected: int = 0


# --- what the identity provider sends ------------------------------------------------------


def user_body(n: int, tag: str, domain: str) -> dict[str, Any]:
    """An Okta/Entra-like POST /Users body, distinct per `n`."""
    given, family = f"Given{n}", f"Family{tag}"
    address = f"scim.{tag}.{n}@{domain}"
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": address,
        "externalId": f"00u{tag}{n:07d}",
        "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
        "displayName": f"{given} {family}",
        "emails": [{"value": address, "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE: {
            "employeeNumber": str(n),
            "department": DEPARTMENTS[n % len(DEPARTMENTS)],
            "organization": "Bench",
        },
    }


def filter_path(username: str) -> str:
    return f"{SCIM}/Users?filter=" + quote(f'userName eq "{username}"', safe="")


def members(ids: list[str]) -> list[dict[str, str]]:
    return [{"value": i} for i in ids]


def add_members(ids: list[str]) -> dict[str, Any]:
    """Okta's PATCH: `add` of `members`."""
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": members(ids)}],
    }


def remove_members(ids: list[str]) -> dict[str, Any]:
    """Entra's PATCH: a capitalised `Remove` with the members as a value list."""
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "Remove", "path": "members", "value": members(ids)}],
    }


# --- the database side ---------------------------------------------------------------------


async def mint_scim(url: str, org_id: str) -> str:
    """A SCIM token of the organization (`tenantry scim token create` without the CLI)."""
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.identity.scim_tokens import mint_scim_token

    database = Database(load_settings(database_url=url))
    try:
        async with database.transaction() as db:
            minted = await mint_scim_token(
                db,
                organization_id=org_id,
                default_role="ORGANIZATION_MEMBER",
                name="bench",
                expires_at=None,
                created_by=None,
            )
            return minted.secret
    finally:
        await database.dispose()


async def sample_users(url: str, org_id: str, n: int) -> list[tuple[str, str]]:
    """`n` random (id, userName) of the organization's managed accounts."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(User.id, User.username)
                .where(User.managed_by_organization_id == org_id)
                .order_by(func.random())
                .limit(n)
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        await engine.dispose()


async def count_rows(url: str, condition: ColumnElement[bool]) -> int:
    """How many rows of the condition's table meet it (the database's word, not the API's)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).where(condition)) or 0)
    finally:
        await engine.dispose()


def count_managed(url: str, org_id: str) -> int:
    return asyncio.run(count_rows(url, User.managed_by_organization_id == org_id))


def count_members(url: str, team_id: str) -> int:
    return asyncio.run(count_rows(url, TeamMember.team_id == team_id))


def filter_query(org_id: str, username: str) -> str:
    """The SQL the face's list use case runs for `userName eq` (its page: a short first page
    needs no count), literal values: the same predicate compilation, order and limit as
    directory.provisioning.list_users (an ORDER BY ... LIMIT can lure a planner into walking
    the order's index instead of the name's)."""
    from tenantry.directory.predicates import compile_predicate
    from tenantry.directory.provisioning import USER_FIELDS
    from tenantry.faces.scim.users import user_filter

    where = user_filter(f'userName eq "{username}"')
    assert where is not None
    query = (
        select(User)
        .where(User.managed_by_organization_id == org_id, compile_predicate(where, USER_FIELDS))
        .order_by(User.created_at, User.id)
        .limit(100)
    )
    return str(query.compile(compile_kwargs={"literal_binds": True}))


async def explain(url: str, org_id: str, username: str) -> tuple[str, str | None]:
    """The plan of the filter's query and the users index it uses (None: a scan)."""
    sql = filter_query(org_id, username)
    sqlite = url.startswith("sqlite")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if sqlite:
                rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
                lines = [str(r[-1]) for r in rows]
            else:
                rows = await conn.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}"))
                lines = [str(r[0]) for r in rows]
    finally:
        await engine.dispose()
    return "\n".join(lines), used_index(lines)


def used_index(plan: list[str]) -> str | None:
    """The first index named in a plan (PostgreSQL `Index Scan using X`, SQLite `USING
    INDEX X`), None when the plan reads the table without one."""
    for line in plan:
        for marker in (" using ", "USING INDEX ", "USING COVERING INDEX "):
            if marker in line:
                return line.split(marker, 1)[1].split()[0]
    return None


# --- the HTTP side -------------------------------------------------------------------------


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}


def check_filter(srv: Server, token: str, username: str, expected: int) -> None:
    r = httpx.get(srv.base + filter_path(username), headers=headers(token), timeout=30)
    found = r.json().get("totalResults") if r.status_code == 200 else None
    if found != expected:
        raise RuntimeError(f"filter {username!r}: HTTP {r.status_code}, {r.text[:300]}")


def run_filter(
    srv: Server, token: str, names: list[str], opts: Options, connections: int
) -> LoadStats:
    spec = LoadSpec(
        srv.base,
        [filter_path(n) for n in names],
        headers(token),
        connections=connections,
        seconds=opts.seconds,
        warmup=opts.warmup,
    )
    return run_load(spec, opts.loadgen)


def run_provision(srv: Server, token: str, bodies: list[str], opts: Options) -> LoadStats:
    spec = LoadSpec(
        srv.base,
        [f"{SCIM}/Users"],
        headers(token),
        connections=opts.post_connections,
        seconds=0.0,
        warmup=0.0,
        method="POST",
        bodies=bodies,
        once=True,
        timeout=60.0,
    )
    return run_load(spec, "python")  # each body exactly once: the asyncio client only


def timed(client: httpx.Client, method: str, path: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    r = client.request(method, path, content=json.dumps(body))
    ms = (time.perf_counter() - started) * 1000
    if r.status_code not in (200, 201, 204):
        raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:300]}")
    return ms


def run_groups(
    srv: Server, url: str, token: str, ids: list[str], opts: Options, say: Say
) -> GroupRun:
    base, extra = ids[: opts.group], ids[opts.group : opts.group + opts.patch]
    with httpx.Client(base_url=srv.base + SCIM, headers=headers(token), timeout=120) as client:
        body = {"schemas": [GROUP_SCHEMA], "displayName": "bench", "members": members(base)}
        started = time.perf_counter()
        r = client.post("/Groups", content=json.dumps(body))
        create_ms = (time.perf_counter() - started) * 1000
        if r.status_code != 201:
            raise RuntimeError(f"POST /Groups: HTTP {r.status_code} {r.text[:300]}")
        team_id = r.json()["id"]
        run = GroupRun(len(base), len(extra), round(create_ms, 1))
        path = f"/Groups/{team_id}"
        for _ in range(opts.rounds):
            run.add_ms.append(round(timed(client, "PATCH", path, add_members(extra)), 1))
            _expect(count_members(url, team_id), len(base) + len(extra))
            run.remove_ms.append(round(timed(client, "PATCH", path, remove_members(extra)), 1))
            _expect(count_members(url, team_id), len(base))
        say(
            f"  groups: POST with {label(len(base))} members {create_ms:.0f} ms; "
            f"PATCH +{len(extra)} {run.add_ms} ms; -{len(extra)} {run.remove_ms} ms"
        )
        return run


def _expect(found: int, wanted: int) -> None:
    if found != wanted:
        raise RuntimeError(f"the group has {found} members, expected {wanted}")


# --- one database ---------------------------------------------------------------------------


def run_one(kind: str, opts: Options, pg_url: str | None, logs: Path, say: Say) -> ScimRun:
    size = opts.filter_users
    with fresh_database(kind, f"scim_{label(size)}", pg_url=pg_url) as url:
        info = asyncio.run(
            load_organization(
                url,
                users=size,
                workspaces=0,
                deployments_per_workspace=0,
                seed=17,
                provisioned=True,
            )
        )
        say(f"  {kind}: {label(size)} managed users bulk-loaded in {info.seconds:.1f} s")
        token = asyncio.run(mint_scim(url, info.organization_id))
        sample = asyncio.run(
            sample_users(url, info.organization_id, max(opts.group + opts.patch, opts.names))
        )
        existing = [name for _, name in sample[: opts.names // 2]]
        made_up = [f"nobody.{i}@{info.domain}" for i in range(opts.names - len(existing))]
        names = existing + made_up
        random.Random(17).shuffle(names)
        plan, index = asyncio.run(explain(url, info.organization_id, existing[0]))
        result = ScimRun(kind, size, round(info.seconds, 1), plan, index)
        for workers in opts.workers:
            tag = f"w{workers}"
            bodies = [
                json.dumps(user_body(n, tag, info.domain), separators=(",", ":"))
                for n in range(opts.provision)
            ]
            with server(url=url, workers=workers, log_path=logs / f"scim-{kind}-{tag}.log") as srv:
                check_filter(srv, token, existing[0], 1)
                check_filter(srv, token, made_up[0], 0)
                one = run_filter(srv, token, names, opts, 1)
                say(_line(f"filter userName eq, {kind}, 1 conn", workers, one))
                found = run_filter(srv, token, names, opts, opts.connections)
                say(_line(f"filter userName eq, {kind}", workers, found))
                posted = run_provision(srv, token, bodies, opts)
                say(_line(f"POST /Users, {kind}", workers, posted))
                if workers == opts.workers[0]:
                    ids = [i for i, _ in sample]
                    result.group = run_groups(srv, url, token, ids, opts, say)
            result.runs.append(WorkerRun(workers, one, found, posted))
            result.expected += opts.provision
        result.provisioned = count_managed(url, info.organization_id) - size
        say(f"  {kind}: {result.provisioned} of {result.expected} POSTed users in the database")
        return result


def _line(name: str, workers: int, s: LoadStats) -> str:
    return (
        f"  {name:<36} {workers}w  {s.req_s:8.1f} req/s  p50 {s.p50_ms:7.2f} ms  "
        f"p95 {s.p95_ms:7.2f} ms  p99 {s.p99_ms:7.2f} ms  errors {s.errors}  ({s.tool})"
    )


# --- on its own -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", default="postgres", help="postgres,sqlite")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--filter-users", default="1M")
    parser.add_argument("--provision", default="10k")
    parser.add_argument("--group", default="10k")
    parser.add_argument("--patch", default="1k")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loadgen", default="auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opts = Options(
        filter_users=parse_size(args.filter_users),
        provision=parse_size(args.provision),
        group=parse_size(args.group),
        patch=parse_size(args.patch),
        rounds=args.rounds,
        seconds=args.seconds,
        workers=tuple(int(w) for w in args.workers.split(",")),
        loadgen=args.loadgen,
    )
    with tempfile.TemporaryDirectory(prefix="tenantry-scim-") as tmp:
        for kind in args.db.split(","):
            run = run_one(kind.strip(), opts, args.pg_url, Path(tmp), _say)
            print(json.dumps(asdict(run), indent=2, default=str))
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


if __name__ == "__main__":
    raise SystemExit(main())
