"""The mix benchmark (issue 15): many distinct callers on `GET /v1/users/self` while roles change.

    python -m bench.suite --only mix            # the whole grid (bench.suite's --mix-* options)
    python -m bench.suite --only mix --quick    # 2 000 callers, 5 s runs

The data, per database (`load`): a "callers" organization (bulk-loaded by
tenantry.devdata.bulk: 50 workspaces of 4 deployments, its realistic spread of organization,
workspace, deployment and DAG roles) whose first N active members after the owner are the callers,
each with a personal token of their own (rows written directly, as the bulk loader writes
users: only the SHA-256 digest is stored, the bench keeps the secrets), and TARGETS more
members whose roles the writer changes; and an "elsewhere" organization of
ELSEWHERE_MEMBERS members of its own. The owners' tokens are minted through the services.
PROBE_CALLERS of the callers are also members of the elsewhere organization (added through the
services), so that a probe can change their roles there.

A case (`run_case`) is one `tenantry serve` process (1 or 2 workers, TENANTRY_CACHE on or off,
TENANTRY_CACHE_STATS_DIR a directory of its own), then:

1. warm-up: every caller's token once (bench.loadgen's asyncio client, `--once`), so that each
   caller has been seen once before, as in the issue's figures;
2. the writer, if the case has a rate: this module run as a program (`--writer SPEC`), which
   replaces members' roles (astro `POST /v1/organizations/{org}/users/{user}/roles` with the
   organization owner's token: the member's own roles with one workspace role toggled between
   WORKSPACE_MEMBER and WORKSPACE_AUTHOR) at the rate asked, open-loop with at most
   MAX_IN_FLIGHT writes at once, either in the elsewhere organization or to other members of
   the callers' own organization; every PROBE_EVERY-th write is a freshness probe instead: it
   changes a caller's role (in the organization of the case) and at once reads that caller's
   `GET /v1/users/self` on a new connection (so any worker may answer), and counts the answer
   stale unless it shows the new role;
3. the readers: bench.loadgen (wrk with a Lua script rotating the callers' Authorization
   headers where wrk is installed, else the asyncio client rotating them), `--connections`
   connections for `--warmup` + `--seconds`, rotating through all the case's callers;
4. the server stopped: each worker writes its cache counters; the hit rate is the "answer"
   kind's, over the readers' warm-up and measured window (the warm-up pass's look-ups, one miss
   per caller on a fresh server, are taken out).

Every (database, workers) pair also has its one-token baseline, measured the same way in the
same run (a server of its own: its counters must be its own): the ratios are against it.

Memory (`run_memory`, full run only): PostgreSQL, one worker, `--mix-memory` callers (100 000)
each used once; the worker's RSS before and after, and the bytes per cached caller.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, cast

import httpx
from sqlalchemy import Table, bindparam, insert, text

from bench import loadgen
from bench.common import ROOT, Server, fresh_database, label, mint_token, percentile, server
from bench.loadgen import LoadSpec, LoadStats

SELF = "/v1/users/self"
ROLES = "/v1/organizations/{org}/users/{user}/roles"
ELSEWHERE_MEMBERS = 2_000
TARGETS = 200  # members of each organization whose roles the writer changes
PROBE_CALLERS = 20
PROBE_EVERY = 10  # every 10th write is a freshness probe
MAX_IN_FLIGHT = 8  # writes at once (admins of many organizations work at the same time)
MARKER_ROLES = ("WORKSPACE_MEMBER", "WORKSPACE_AUTHOR")  # the toggled workspace role
WHERE = ("elsewhere", "own")
READY = "BENCH_MIX_WRITER_READY"
MARK = "BENCH_MIX_WRITER_JSON "
RoleBody = dict[str, Any]


class Progress(Protocol):
    def say(self, message: str) -> None: ...
    def start(self, what: str) -> None: ...
    def done(self, n: int = 1) -> None: ...


# --- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    db: str
    workers: int
    callers: int  # 1: the one-token baseline
    rate: int = 0  # role changes per second
    where: str = ""  # "elsewhere" | "own" | "" (no writes)
    cache: bool = True

    @property
    def baseline(self) -> bool:
        return self.callers == 1

    @property
    def graded(self) -> bool:
        """The issue's targets are set for PostgreSQL with one worker."""
        return self.db == "postgres" and self.workers == 1

    def name(self) -> str:
        if self.baseline:
            return "one token, no changes (baseline)"
        writes = "no changes"
        if self.rate:
            writes = f"{self.rate}/s " + ("elsewhere" if self.where == "elsewhere" else "own org")
        cache = "" if self.cache else ", cache off"
        return f"{label(self.callers)} callers{cache}, {writes}"


def plan(
    dbs: Sequence[str],
    workers: Sequence[int],
    callers: Sequence[int],
    rates: Sequence[int],
    *,
    quick: bool = False,
) -> list[Case]:
    """The grid. For each database and worker count: the baseline; the smallest number of
    callers with no changes and each rate both elsewhere and in their own organization
    (quick: rates above the first only in their own); the other numbers of callers at the
    first rate (PostgreSQL with one worker: also with no changes and elsewhere); the cold path
    (cache off) with no changes (PostgreSQL with one worker: also at the first rate, own
    organization). Quick runs SQLite with one worker only."""
    small = min(callers)
    writing = [r for r in rates if r > 0]
    first = writing[0] if writing else 0
    cases: list[Case] = []
    for db in dbs:
        for w in workers:
            if quick and db == "sqlite" and w > 1:
                continue
            graded = db == "postgres" and w == 1
            cases.append(Case(db, w, 1))
            if 0 in rates:
                cases.append(Case(db, w, small))
            for r in writing:
                places = ("own",) if quick and r != first else WHERE
                cases += [Case(db, w, small, r, where) for where in places]
            for n in sorted(set(callers) - {small}):
                if graded and 0 in rates:
                    cases.append(Case(db, w, n))
                if first:
                    places = WHERE if graded else ("own",)
                    cases += [Case(db, w, n, first, where) for where in places]
            cases.append(Case(db, w, small, cache=False))
            if graded and first:
                cases.append(Case(db, w, small, first, "own", cache=False))
    return cases


# --- grading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What a case measured that its targets look at."""

    req_s: float
    p99_ms: float
    errors: int
    ratio: float | None  # req/s against the one-token baseline
    probes: int
    stale: int


@dataclass(frozen=True)
class Criterion:
    text: str
    holds: Callable[[Observed], bool]


def _at_least(share: float) -> Criterion:
    return Criterion(f"≥ {share:g}x one-token", lambda o: o.ratio is not None and o.ratio >= share)


P99_20 = Criterion("p99 ≤ 20 ms", lambda o: o.p99_ms <= 20)
NEVER_STALE = Criterion("0 stale", lambda o: o.probes > 0 and o.stale == 0)
COLD = Criterion("≥ 2 000 req/s", lambda o: o.req_s >= 2000)


def criteria(case: Case) -> list[Criterion]:
    """The issue's targets for a read row (PostgreSQL, 1 worker), and "0 stale" wherever
    roles change (every database and worker count: the answers must never be stale)."""
    out: list[Criterion] = []
    if case.baseline:
        return out
    if case.graded and case.cache:
        if case.callers == 2_000 and case.rate == 20:
            out += [_at_least(0.5), P99_20]
        elif case.callers >= 20_000:
            out.append(_at_least(0.4))
    if case.graded and not case.cache and case.rate == 0:
        out.append(COLD)
    if case.rate:
        out.append(NEVER_STALE)
    return out


def grade(case: Case, seen: Observed) -> tuple[str | None, bool | None]:
    """The target text and whether it was met (every criterion, and no failed request)."""
    found = criteria(case)
    if not found:
        return None, None
    return ", ".join(c.text for c in found), seen.errors == 0 and all(c.holds(seen) for c in found)


WRITE_P99_MS = 50.0
WRITE_SHARE = 0.9


def write_target(case: Case) -> str | None:
    """Issue 15, item 4: role replacement keeps p99 ≤ 50 ms while reads saturate the worker,
    and reads must not starve writes (the writer must get what it asks for: 90% of it)."""
    if case.graded and case.cache and case.rate:
        return f"p99 ≤ {WRITE_P99_MS:g} ms, ≥ {WRITE_SHARE:.0%} of {case.rate}/s"
    return None


def write_passed(case: Case, achieved: float, p99_ms: float, errors: int) -> bool | None:
    if write_target(case) is None:
        return None
    return errors == 0 and p99_ms <= WRITE_P99_MS and achieved >= WRITE_SHARE * case.rate


# --- role bodies and the freshness check (pure) --------------------------------------------------


def role_body(organization_role: str, bindings: Sequence[Sequence[Any]]) -> RoleBody:
    """A member's roles in the astro request body of role replacement, from their membership
    and their role_bindings rows (role, scope_type, workspace_id, deployment_id, dag_id,
    dag_tag)."""
    body: RoleBody = {
        "organizationRole": organization_role,
        "workspaceRoles": [],
        "deploymentRoles": [],
        "dagRoles": [],
    }
    for role, scope_type, workspace_id, deployment_id, dag_id, dag_tag in bindings:
        if scope_type == "WORKSPACE":
            body["workspaceRoles"].append({"workspaceId": workspace_id, "role": role})
        elif scope_type == "DEPLOYMENT":
            body["deploymentRoles"].append({"deploymentId": deployment_id, "role": role})
        elif scope_type == "DAG":
            body["dagRoles"].append({"deploymentId": deployment_id, "role": role, "dagId": dag_id})
        elif scope_type == "DAG_TAG":
            body["dagRoles"].append(
                {"deploymentId": deployment_id, "role": role, "dagTag": dag_tag}
            )
    return body


def marker_role(body: RoleBody, marker: str) -> str | None:
    return next((w["role"] for w in body["workspaceRoles"] if w["workspaceId"] == marker), None)


def next_role(last: str | None) -> str:
    """The marker role a write sets: never the one the member holds now."""
    return MARKER_ROLES[1] if last == MARKER_ROLES[0] else MARKER_ROLES[0]


def with_marker(body: RoleBody, marker: str, role: str) -> RoleBody:
    """The member's roles with their role in the marker workspace replaced by `role`."""
    kept = [w for w in body["workspaceRoles"] if w["workspaceId"] != marker]
    return {**body, "workspaceRoles": [*kept, {"workspaceId": marker, "role": role}]}


def shows(self_body: Any, marker: str, role: str) -> bool:
    """Whether a `GET /v1/users/self` body shows `role`, and only it, in the marker
    workspace."""
    roles = self_body.get("roles") if isinstance(self_body, dict) else None
    there = {
        r.get("role")
        for r in roles or []
        if r.get("scope", {}).get("type") == "WORKSPACE"
        and r.get("scope", {}).get("entityId") == marker
    }
    return there == {role}


# --- the data ------------------------------------------------------------------------------------


@dataclass
class Org:
    id: str
    owner_token: str
    marker: str  # the workspace whose role the writes toggle
    targets: list[str]  # members whose roles the writer changes (not callers)


@dataclass
class Dataset:
    db: str
    url: str
    own: Org
    elsewhere: Org
    callers: list[str]  # user ids, callers[i] holds tokens[i]
    tokens: list[str] = field(repr=False)
    probes: list[int]  # indices into callers
    bodies: dict[tuple[str, str], RoleBody]  # (org, user): their roles there, read at load
    last: dict[str, str] = field(default_factory=dict)  # "org/user": marker role now
    info: dict[str, Any] = field(default_factory=dict)  # what was loaded, how fast

    def org(self, where: str) -> Org:
        return self.elsewhere if where == "elsewhere" else self.own


async def load(url: str, callers: int) -> Dataset:
    """Both organizations, the callers' tokens, the probe callers' second membership, and the
    role bodies of everyone the writer will touch."""
    from tenantry.devdata.bulk import load_organization

    started = time.perf_counter()
    # About 3% of the bulk loader's users are not active (their tokens are refused): enough
    # members that `callers` of them are.
    own = await load_organization(
        url,
        users=1 + math.ceil(callers / 0.95) + 50 + TARGETS,
        workspaces=50,
        deployments_per_workspace=4,
        seed=42,
    )
    other = await load_organization(
        url, users=ELSEWHERE_MEMBERS, workspaces=10, deployments_per_workspace=3, seed=7
    )
    loaded = time.perf_counter() - started
    own_members = await _members(url, own.organization_id)
    other_members = await _members(url, other.organization_id)
    for members, owner in ((own_members, own.owner_id), (other_members, other.owner_id)):
        if members[0] != (owner, True):
            raise RuntimeError(f"the bulk loader's first member {members[0]} is no active owner")
    active = [n for n, (_, ok) in enumerate(own_members) if ok and n > 0][:callers]
    if len(active) < callers:
        raise RuntimeError(f"only {len(active)} active members for {callers} callers")
    caller_ids = [own_members[n][0] for n in active]
    after = active[-1] + 1
    own_targets = [u for u, _ in own_members[after : after + TARGETS]]
    other_targets = [u for u, _ in other_members[1 : 1 + TARGETS]]
    mark = time.perf_counter()
    tokens = await _insert_tokens(url, caller_ids)
    token_seconds = time.perf_counter() - mark
    probes = list(range(1, 1 + min(PROBE_CALLERS, callers - 1)))
    own_org = Org(
        own.organization_id,
        await mint_token(url, own.owner_id, name="bench mix owner"),
        own.workspace_ids[-1],
        own_targets,
    )
    other_org = Org(
        other.organization_id,
        await mint_token(url, other.owner_id, name="bench mix owner"),
        other.workspace_ids[-1],
        other_targets,
    )
    await _join_elsewhere(url, other_org, [caller_ids[i] for i in probes])
    bodies: dict[tuple[str, str], RoleBody] = {}
    for org in (own_org, other_org):
        users = [*org.targets, *(caller_ids[i] for i in probes)]
        bodies |= {(org.id, u): b for u, b in (await _role_bodies(url, org.id, users)).items()}
    dataset = Dataset(
        db="sqlite" if url.startswith("sqlite") else "postgres",
        url=url,
        own=own_org,
        elsewhere=other_org,
        callers=caller_ids,
        tokens=tokens,
        probes=probes,
        bodies=bodies,
    )
    for (org_id, user), body in bodies.items():
        org = own_org if org_id == own_org.id else other_org
        if (now := marker_role(body, org.marker)) is not None:
            dataset.last[f"{org_id}/{user}"] = now
    dataset.info = {
        "callers": callers,
        "members": {"own": len(own_members), "elsewhere": len(other_members)},
        "bindings": {"own": own.bindings, "elsewhere": other.bindings},
        "load_seconds": round(loaded, 1),
        "token_seconds": round(token_seconds, 1),
    }
    return dataset


@contextmanager
def dataset(db: str, callers: int, pg_url: str, say: Callable[[str], None]) -> Iterator[Dataset]:
    """A fresh database with the mix data, dropped afterwards."""
    with fresh_database(db, f"mix_{label(callers)}", pg_url=pg_url) as url:
        found = asyncio.run(load(url, callers))
        info = found.info
        say(
            f"  {db}: {info['members']['own']:,} + {info['members']['elsewhere']:,} members "
            f"in {info['load_seconds']} s, {callers:,} tokens in {info['token_seconds']} s"
        )
        yield found


def _engine(url: str) -> Any:
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(url)


async def _members(url: str, org_id: str) -> list[tuple[str, bool]]:
    """The organization's members in creation order (the bulk loader's ids sort so), and
    whether each is active (may sign in)."""
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT m.user_id, u.status = 'ACTIVE' AND u.enabled FROM memberships m "
                    "JOIN users u ON u.id = m.user_id WHERE m.organization_id = :org ORDER BY 1"
                ),
                {"org": org_id},
            )
            return [(r[0], bool(r[1])) for r in rows]
    finally:
        await engine.dispose()


async def _insert_tokens(url: str, user_ids: Sequence[str]) -> list[str]:
    """A personal token per user, written as rows (as tenantry.identity.tokens mints them:
    only the digest and the short prefix are stored); their secrets, in the same order."""
    from tenantry.clock import utcnow
    from tenantry.db.models import Token
    from tenantry.devdata.bulk import IdSequence
    from tenantry.identity import tokens as token_lib

    ids = IdSequence()
    now = utcnow()
    expires = now + timedelta(days=30)
    secrets_out: list[str] = []
    rows: list[dict[str, Any]] = []
    for n, user_id in enumerate(user_ids):
        secret = token_lib.new_secret()
        secrets_out.append(secret)
        rows.append(
            {
                "id": ids(n),
                "kind": token_lib.TokenKind.PERSONAL.value,
                "digest": token_lib.digest(secret),
                "short_token": secret[len(token_lib.PREFIX) : len(token_lib.PREFIX) + 8],
                "user_id": user_id,
                "name": "bench mix",
                "description": "",
                "expires_at": expires,
                "created_by": user_id,
                "updated_by": user_id,
                "created_at": now,
                "updated_at": now,
            }
        )
    table = cast(Table, Token.__table__)
    engine = _engine(url)
    try:
        async with engine.begin() as conn:
            for i in range(0, len(rows), 5000):
                await conn.execute(insert(table), rows[i : i + 5000])
    finally:
        await engine.dispose()
    return secrets_out


async def _join_elsewhere(url: str, org: Org, user_ids: Sequence[str]) -> None:
    """The probe callers join the elsewhere organization (a member with one workspace role),
    through the services, as an operator would add them."""
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.directory.members import RoleSet, replace_user_roles
    from tenantry.identity.principals import system_principal

    database = Database(load_settings(database_url=url))
    try:
        async with database.transaction() as db:
            for user_id in user_ids:
                roles = RoleSet("ORGANIZATION_MEMBER", [(org.marker, MARKER_ROLES[0])])
                await replace_user_roles(db, system_principal(), org.id, user_id, roles)
    finally:
        await database.dispose()


async def _role_bodies(url: str, org_id: str, user_ids: Sequence[str]) -> dict[str, RoleBody]:
    engine = _engine(url)
    users: Any = bindparam("users", expanding=True)
    try:
        async with engine.connect() as conn:
            memberships = await conn.execute(
                text(
                    "SELECT user_id, role FROM memberships "
                    "WHERE organization_id = :org AND user_id IN :users"
                ).bindparams(users),
                {"org": org_id, "users": list(user_ids)},
            )
            roles: dict[str, str] = dict(memberships.tuples().all())
            bindings = await conn.execute(
                text(
                    "SELECT subject_id, role, scope_type, workspace_id, deployment_id, dag_id, "
                    "dag_tag FROM role_bindings WHERE organization_id = :org "
                    "AND subject_type = 'user' AND subject_id IN :users ORDER BY id"
                ).bindparams(users),
                {"org": org_id, "users": list(user_ids)},
            )
            held: dict[str, list[Sequence[Any]]] = {}
            for row in bindings:
                held.setdefault(row[0], []).append(tuple(row[1:]))
    finally:
        await engine.dispose()
    return {u: role_body(roles[u], held.get(u, [])) for u in user_ids}


# --- the writer (a process of its own) -----------------------------------------------------------


@dataclass
class WriterResult:
    rate: float  # asked
    seconds: float
    attempted: int
    ok: int
    achieved: float  # 2xx writes per second
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # failed writes and failed probe reads
    statuses: dict[str, int]
    probes: int  # probe reads that answered 200
    stale: int
    probe_read_p50_ms: float
    examples: list[str]  # the first few failures and stale answers (no secrets)
    last: dict[str, str]  # "org/user": the marker role each member holds now


def writer_spec(ds: Dataset, case: Case, base: str, max_seconds: float) -> dict[str, Any]:
    org = ds.org(case.where)

    def item(user: str) -> dict[str, Any]:
        return {
            "user": user,
            "body": ds.bodies[org.id, user],
            "last": ds.last.get(f"{org.id}/{user}"),
        }

    return {
        "base": base,
        "rate": case.rate,
        "max_seconds": max_seconds,
        "org": org.id,
        "owner_token": org.owner_token,
        "marker": org.marker,
        "probe_every": PROBE_EVERY,
        "max_in_flight": MAX_IN_FLIGHT,
        "writes": [item(u) for u in org.targets],
        "probes": [{**item(ds.callers[i]), "reader": ds.tokens[i]} for i in ds.probes],
    }


def start_writer(spec: dict[str, Any], workdir: Path) -> loadgen.Running[WriterResult]:
    """The writer in a process of its own, returned once it is ready to write: it stops when
    its stdin closes (Running.result) or after max_seconds."""
    path = workdir / f"writer-{os.getpid()}-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(spec))  # holds tokens: deleted by Running.result
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.mix", "--writer", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    running = loadgen.Running(proc, _parse_writer, float(spec["max_seconds"]) + 60, path)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != READY:
        proc.kill()
        _, err = proc.communicate()
        path.unlink(missing_ok=True)
        raise RuntimeError(f"the writer did not start: {(line + err)[-2000:]}")
    return running


def _parse_writer(out: str) -> WriterResult:
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith(MARK))
    return WriterResult(**json.loads(line[len(MARK) :]))


class Writer:
    """Role changes at a rate: open-loop (a write is due every 1/rate s, whatever the earlier
    ones do), at most `max_in_flight` at once; every `probe_every`-th write a probe."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.latencies: list[float] = []
        self.probe_reads: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors = self.probes = self.stale = self.ok = 0
        self.examples: list[str] = []
        self.auth = {"Authorization": f"Bearer {spec['owner_token']}"}
        # One change at a time per member: two overlapping changes of one member would both
        # toggle from the same role, and a probe overlapping another of its caller could see
        # the other's role and miscount (tests/test_bench_mix.py failed so on a loaded machine).
        self._busy: dict[str, asyncio.Lock] = {}

    def _example(self, text_: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text_[:300])

    async def run(self, stop: asyncio.Event) -> WriterResult:
        spec = self.spec
        limit = int(spec["max_in_flight"])
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
        fresh_limits = httpx.Limits(max_keepalive_connections=0)  # a new connection each read
        async with (
            httpx.AsyncClient(base_url=spec["base"], limits=limits, timeout=30) as client,
            httpx.AsyncClient(base_url=spec["base"], limits=fresh_limits, timeout=30) as fresh,
        ):
            print(READY, flush=True)
            return await self._loop(client, fresh, stop)

    async def _loop(
        self, client: httpx.AsyncClient, fresh: httpx.AsyncClient, stop: asyncio.Event
    ) -> WriterResult:
        spec = self.spec
        rate, every = float(spec["rate"]), int(spec["probe_every"])
        writes, probes = spec["writes"], spec["probes"]
        slots = asyncio.Semaphore(int(spec["max_in_flight"]))
        tasks: set[asyncio.Task[None]] = set()
        t0 = time.perf_counter()
        k = 0
        while not stop.is_set() and time.perf_counter() - t0 < float(spec["max_seconds"]):
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            await slots.acquire()
            probe = bool(probes) and k % every == every - 1
            item = probes[(k // every) % len(probes)] if probe else writes[k % len(writes)]
            task = asyncio.create_task(self._one(client, fresh, item, probe))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(lambda _: slots.release())
            k += 1
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - t0
        self.latencies.sort()
        self.probe_reads.sort()
        last = {f"{spec['org']}/{i['user']}": i["last"] for i in [*writes, *probes] if i["last"]}
        return WriterResult(
            rate=rate,
            seconds=round(seconds, 2),
            attempted=k,
            ok=self.ok,
            achieved=round(self.ok / seconds, 1) if seconds else 0.0,
            p50_ms=round(percentile(self.latencies, 50), 2),
            p99_ms=round(percentile(self.latencies, 99), 2),
            max_ms=round(self.latencies[-1], 2) if self.latencies else float("nan"),
            errors=self.errors,
            statuses=dict(self.statuses),
            probes=self.probes,
            stale=self.stale,
            probe_read_p50_ms=round(percentile(self.probe_reads, 50), 2),
            examples=self.examples,
            last=last,
        )

    async def _one(
        self,
        client: httpx.AsyncClient,
        fresh: httpx.AsyncClient,
        item: dict[str, Any],
        probe: bool,
    ) -> None:
        async with self._busy.setdefault(item["user"], asyncio.Lock()):
            await self._one_at_a_time(client, fresh, item, probe)

    async def _one_at_a_time(
        self,
        client: httpx.AsyncClient,
        fresh: httpx.AsyncClient,
        item: dict[str, Any],
        probe: bool,
    ) -> None:
        spec = self.spec
        reader = {"Authorization": f"Bearer {item.get('reader', '')}"}
        if probe:  # cached on whichever workers these land on, before the change
            for _ in range(2):
                await self._get(fresh, reader)
        role = next_role(item["last"])
        body = with_marker(item["body"], spec["marker"], role)
        path = ROLES.format(org=spec["org"], user=item["user"])
        started = time.perf_counter()
        try:
            r = await client.post(path, json=body, headers=self.auth)
        except httpx.HTTPError as exc:
            self.errors += 1
            self.statuses[type(exc).__name__] += 1
            return
        self.statuses[str(r.status_code)] += 1
        if r.status_code != 200:
            self.errors += 1
            self._example(f"POST roles: HTTP {r.status_code} {r.text}")
            return
        self.latencies.append((time.perf_counter() - started) * 1000)
        self.ok += 1
        item["last"] = role
        if probe:
            await self._check(fresh, reader, item["user"], role)

    async def _get(
        self, fresh: httpx.AsyncClient, headers: dict[str, str]
    ) -> httpx.Response | None:
        try:
            return await fresh.get(SELF, headers=headers)
        except httpx.HTTPError:
            return None

    async def _check(
        self, fresh: httpx.AsyncClient, headers: dict[str, str], user: str, role: str
    ) -> None:
        started = time.perf_counter()
        r = await self._get(fresh, headers)
        if r is None or r.status_code != 200:
            self.errors += 1
            self._example(f"probe read of {user}: {r.status_code if r else 'no answer'}")
            return
        self.probe_reads.append((time.perf_counter() - started) * 1000)
        self.probes += 1
        if not shows(r.json(), self.spec["marker"], role):
            self.stale += 1
            self._example(f"stale: {user} was given {role}; GET {SELF} said otherwise")


async def _writer_main(spec: dict[str, Any]) -> WriterResult:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The orchestrator closes our stdin when the readers are done.
    closed = loop.run_in_executor(None, sys.stdin.readline)
    closed.add_done_callback(lambda _: stop.set())
    return await Writer(spec).run(stop)


# --- one case ------------------------------------------------------------------------------------


@dataclass
class CaseResult:
    case: Case
    reads: LoadStats
    warm: LoadStats | None  # the once-each pass
    counters: dict[str, Any] | None  # summed over the workers
    hit_pct: float | None
    writer: WriterResult | None
    seconds: float
    note: str = ""
    load_average: list[float] = field(default_factory=list)  # 1-minute, at start and end
    # the workers' own timing of the writer's requests (write_phases), None without writes
    server_writes: dict[str, float] | None = None


@dataclass
class Options:
    connections: int = 20
    seconds: float = 15.0
    warmup: float = 2.0
    tool: str = "auto"


def read_counters(directory: Path) -> tuple[dict[str, Any], int]:
    """The workers' cache counters (<pid>.json each), summed; and how many files there were."""
    total: dict[str, Any] = {"hits": Counter(), "misses": Counter(), "dropped": 0, "entries": 0}
    writes: list[list[float]] = []
    files = sorted(directory.glob("*.json"))
    for path in files:
        one = json.loads(path.read_text())
        total["hits"].update(one.get("hits", {}))
        total["misses"].update(one.get("misses", {}))
        total["dropped"] += int(one.get("dropped", 0))
        total["entries"] += int(one.get("entries", 0))
        writes += one.get("writes", [])
    hits, misses = dict(total["hits"]), dict(total["misses"])
    return {**total, "hits": hits, "misses": misses, "writes": writes}, len(files)


PHASES = ("total", "before", "held", "after")  # db/priority.py WriteTrace


def write_phases(records: Sequence[Sequence[float]]) -> dict[str, float] | None:
    """p50 and p99 of each phase of the workers' write requests, server-side, in ms: the
    whole request, before its write transaction, in it, after it. Set beside the writer's
    client-side latency, they say where a slow role change spent its time."""
    if not records:
        return None
    out: dict[str, float] = {}
    for k, phase in enumerate(PHASES):
        values = sorted(r[k] for r in records)
        out[f"server_{phase}_p50_ms"] = round(percentile(values, 50), 2)
        out[f"server_{phase}_p99_ms"] = round(percentile(values, 99), 2)
    return out


def hit_rate(counters: dict[str, Any], warm_misses: int = 0) -> float | None:
    """The "answer" kind's hit rate in percent, without the warm-up pass's look-ups (on a
    fresh server each of them is a miss: the caller was never seen)."""
    hits = int(counters["hits"].get("answer", 0))
    misses = int(counters["misses"].get("answer", 0)) - warm_misses
    if hits + misses <= 0 or misses < 0:
        return None
    return round(100 * hits / (hits + misses), 1)


def reader_spec(base: str, tokens: Sequence[str], opts: Options, *, once: bool) -> LoadSpec:
    """The callers' Authorization headers in turn; one token too (the baseline), so that the
    load generator does the same work per request in every case (wrk: a Lua call)."""
    return LoadSpec(
        base,
        [SELF],
        {},
        connections=opts.connections,
        seconds=0.0 if once else opts.seconds,
        warmup=0.0 if once else opts.warmup,
        rotate={"Authorization": [f"Bearer {t}" for t in tokens]},
        once=once,
    )


def run_case(ds: Dataset, case: Case, opts: Options, logs: Path) -> CaseResult:
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    tag = f"{case.db}-{case.workers}w-{case.callers}-{case.rate}{case.where}-{case.cache}"
    stats_dir = Path(tempfile.mkdtemp(prefix=f"cache-{tag}-", dir=logs))
    env = {"TENANTRY_CACHE": "on" if case.cache else "off"}
    env["TENANTRY_CACHE_STATS_DIR"] = str(stats_dir)
    tokens = ds.tokens[: case.callers]
    warm = writer = None
    with server(url=ds.url, workers=case.workers, log_path=logs / f"{tag}.log", env=env) as srv:
        if not case.baseline:
            warm = loadgen.run_load(reader_spec(srv.base, tokens, opts, once=True), "python")
            if warm.ok != len(tokens):
                raise RuntimeError(f"{case.name()}: warm-up {warm.ok}/{len(tokens)} answered 200")
        running = None
        if case.rate:
            budget = opts.warmup + opts.seconds + 60
            running = start_writer(writer_spec(ds, case, srv.base, budget), logs)
        try:
            reads = loadgen.run_load(reader_spec(srv.base, tokens, opts, once=False), opts.tool)
        finally:
            writer = running.result() if running else None
    if writer is not None:
        ds.last |= writer.last
    counters, files = read_counters(stats_dir)
    note = "" if files == case.workers else f"cache counters from {files} of {case.workers} workers"
    hit = hit_rate(counters, warm.requests if warm else 0) if files else None
    phases = write_phases(counters.pop("writes"))
    return CaseResult(
        case, reads, warm, counters if files else None, hit, writer,
        round(time.perf_counter() - started, 1), note, [load_before, os.getloadavg()[0]],
        phases,
    )  # fmt: skip


# --- memory --------------------------------------------------------------------------------------


@dataclass
class MemoryResult:
    callers: int
    rss_before_mb: float
    rss_after_mb: float
    bytes_per_caller: int
    entries: int | None  # the worker's cache entries at shutdown
    resampled_hit_pct: float | None  # 1 in 50 callers again, afterwards: still cached?
    warm: LoadStats
    seconds: float


def rss(srv: Server) -> int:
    import psutil

    return int(psutil.Process(srv.worker_pids()[0]).memory_info().rss)


def run_memory(ds: Dataset, callers: int, opts: Options, logs: Path) -> MemoryResult:
    """One worker; RSS once it has answered the owner a few hundred times, then after every
    one of `callers` tokens was used once; then 1 in 50 of them again (hits: still cached)."""
    started = time.perf_counter()
    stats_dir = Path(tempfile.mkdtemp(prefix="cache-memory-", dir=logs))
    env = {"TENANTRY_CACHE_STATS_DIR": str(stats_dir)}
    tokens = ds.tokens[:callers]
    with server(url=ds.url, workers=1, log_path=logs / "memory.log", env=env) as srv:
        with httpx.Client(base_url=srv.base, timeout=30) as client:
            for _ in range(300):  # the owner: not among the callers
                client.get(SELF, headers={"Authorization": f"Bearer {ds.own.owner_token}"})
        before = rss(srv)
        warm = loadgen.run_load(reader_spec(srv.base, tokens, opts, once=True), "python")
        after = rss(srv)
        again = loadgen.run_load(reader_spec(srv.base, tokens[::50], opts, once=True), "python")
    counters, files = read_counters(stats_dir)
    resampled = None
    if files:
        # hits: 299 of the owner's 300, none of the callers' first uses, then the resample's
        hits = int(counters["hits"].get("answer", 0)) - 299
        resampled = round(100 * hits / again.requests, 1) if again.requests else None
    mb = 1024 * 1024
    return MemoryResult(
        callers=callers,
        rss_before_mb=round(before / mb, 1),
        rss_after_mb=round(after / mb, 1),
        bytes_per_caller=round((after - before) / max(1, warm.ok)),
        entries=counters["entries"] if files else None,
        resampled_hit_pct=resampled,
        warm=warm,
        seconds=round(time.perf_counter() - started, 1),
    )


# --- the group -----------------------------------------------------------------------------------


@dataclass
class MixRun:
    cases: list[CaseResult] = field(default_factory=list)
    memory: MemoryResult | None = None
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def measure(
    cases: Sequence[Case],
    opts: Options,
    *,
    pg_url: str,
    logs: Path,
    progress: Progress,
    memory: int = 0,
) -> MixRun:
    """Every case, database by database (one dataset each, sized for its largest case); the
    memory figure on PostgreSQL when `memory`. A failed case is reported and skipped."""
    run = MixRun()
    for db in dict.fromkeys(c.db for c in cases):
        mine = [c for c in cases if c.db == db]
        size = max(c.callers for c in mine)
        if db == "postgres" and memory:
            size = max(size, memory)
        progress.start(f"mix: loading {db} ({label(size)} callers)")
        with dataset(db, size, pg_url, progress.say) as ds:
            run.data[db] = ds.info
            progress.done()
            for case in mine:
                progress.start(f"mix: {db}, {case.workers} worker(s), {case.name()}")
                try:
                    result = run_case(ds, case, opts, logs)
                except Exception as exc:
                    run.failures.append(f"{db} {case.workers}w {case.name()}: {exc}"[:300])
                    progress.say(f"  [red]failed[/red]: {case.name()}: {exc}")
                else:
                    run.cases.append(result)
                    progress.say(line(result))
                progress.done()
            if db == "postgres" and memory:
                progress.start(f"mix: memory, {label(memory)} callers each used once")
                try:
                    run.memory = run_memory(ds, memory, opts, logs)
                    m = run.memory
                    progress.say(
                        f"  memory: RSS {m.rss_before_mb} -> {m.rss_after_mb} MB with "
                        f"{label(memory)} callers ({m.bytes_per_caller:,} B each), "
                        f"resampled hits {m.resampled_hit_pct}%"
                    )
                except Exception as exc:
                    run.failures.append(f"memory: {exc}"[:300])
                    progress.say(f"  [red]memory failed[/red]: {exc}")
                progress.done()
    return run


def line(r: CaseResult) -> str:
    s, w = r.reads, r.writer
    out = (
        f"  {r.case.workers}w {r.case.name():<36} {s.req_s:8.1f} req/s  p50 {s.p50_ms:6.2f}  "
        f"p99 {s.p99_ms:7.2f} ms  err {s.errors}  hit {r.hit_pct}%"
    )
    if w is not None:
        out += (
            f"  writes {w.achieved}/{w.rate:g}/s p99 {w.p99_ms} ms err {w.errors}  "
            f"stale {w.stale}/{w.probes}"
        )
    if p := r.server_writes:
        out += "  server p99 " + "/".join(f"{p[f'server_{k}_p99_ms']:g}" for k in PHASES)
    load = "/".join(f"{x:.1f}" for x in r.load_average)
    return out + f"  ({s.tool}, {r.seconds:.0f} s, load {load})"


def steps(cases: Sequence[Case], memory: int) -> int:
    """Progress steps: one per dataset, case and memory figure."""
    return len({c.db for c in cases}) + len(cases) + (1 if memory else 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--writer", type=Path, required=True, help="(internal) a writer spec")
    args = parser.parse_args(argv)
    spec = json.loads(args.writer.read_text())
    result = asyncio.run(_writer_main(spec))
    print(MARK + json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
