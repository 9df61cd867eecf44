"""Bulk loading of one big organization, for benchmarks and capacity tests.

Not a use case: it bypasses the service layer (no per-row validation, no audit events) and
writes rows with SQLAlchemy Core executemany (SQLite) or COPY through asyncpg (PostgreSQL), in
one transaction. It keeps every invariant the services keep:

- ids have the cuid format (`c` + 24 lowercase alphanumerics) and are unique: a time prefix,
  a random per-load tag and a counter, so repeated loads into one database never collide;
- `users.username_key` and `email_key` are identity.names' key of the username (an ASCII
  address: its `.lower()`), `email` is the username, verified (as an operator's `add_user`);
- every user gets exactly one membership and `organizations.member_count` is exact;
- role bindings carry `Scope(...).key` and the ancestor ids (`workspace_id`, `deployment_id`)
  exactly as `directory.members.build_bindings` fills them, one binding per (user, scope);
- `holder_counts` (distinct users per workspace, deployment, dagId and dagTag) is exact: the
  loader counts while it generates the bindings and writes the counts itself, with the
  role_bindings triggers paused for this organization (a `paused` counter row, in the load's
  transaction only).

`seed` fixes the shape of the data (names, roles, who holds what where); the ids and the
e-mail domain carry the random per-load tag.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import unicodedata
from bisect import bisect
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import Table, exists, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.authz import scopes
from tenantry.authz.catalogue import WORKSPACE_ROLES
from tenantry.authz.scopes import Scope, ScopeType
from tenantry.clock import utcnow
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.models import Deployment, Membership, Organization, RoleBinding, User, Workspace
from tenantry.db.models.directory import HolderCount

# --- vocabulary ------------------------------------------------------------------------------

FIRST_NAMES = (
    "Ada", "Alan", "Alice", "Amara", "Ana", "André", "Anika", "Arjun", "Astrid", "Ayşe",
    "Ben", "Björn", "Bruno", "Camille", "Carlos", "Chen", "Chiara", "Chloé", "Dario", "David",
    "Diego", "Dmitri", "Elena", "Elif", "Emma", "Erik", "Esther", "Fatima", "Felix", "Freya",
    "Gabriel", "Grace", "Hana", "Hannah", "Hiroshi", "Ines", "Ingrid", "Isabel", "Ivan",
    "Jack", "Jana", "Javier", "Jin", "João", "Jonas", "Julia", "Kai", "Kamala", "Karin",
    "Kenji", "Kwame", "Lara", "Laura", "Leila", "Liam", "Lina", "Lucas", "Lucía", "Łukasz",
    "Maja", "Malik", "Marco", "María", "Mateo", "Mei", "Mia", "Miguel", "Mohammed", "Nadia",
    "Naomi", "Nikolai", "Noah", "Noor", "Olga", "Omar", "Oscar", "Paula", "Pedro", "Priya",
    "Rafael", "Rahul", "Ravi", "Rosa", "Ryo", "Sakura", "Samuel", "Sara", "Sofia", "Søren",
    "Stefan", "Tariq", "Thomas", "Tomás", "Valentina", "Victor", "Wei", "Yara", "Yusuf",
    "Zainab", "Zoë",
)  # fmt: skip
LAST_NAMES = (
    "Abe", "Adeyemi", "Agarwal", "Almeida", "Andersen", "Bakker", "Banerjee", "Becker",
    "Bianchi", "Brown", "Castro", "Chen", "Costa", "Dąbrowski", "Davies", "Dubois", "Dvořák",
    "Eriksson", "Fernández", "Fischer", "Fontaine", "García", "Gómez", "Gupta", "Hansen",
    "Hernández", "Hoffmann", "Huang", "Ibrahim", "Ivanova", "Jansen", "Jensen", "Johnson",
    "Kaya", "Kim", "Kowalski", "Kumar", "Larsen", "Laurent", "Lee", "Lehmann", "Li", "Lopez",
    "Martin", "Müller", "Nakamura", "Nguyen", "Nielsen", "Novak", "Nowak", "O'Brien",
    "Okafor", "Oliveira", "Olsen", "Park", "Patel", "Pereira", "Petrov", "Popescu", "Ramos",
    "Rossi", "Russo", "Sánchez", "Santos", "Sato", "Schmidt", "Schneider", "Silva", "Singh",
    "Smith", "Suzuki", "Svensson", "Takahashi", "Tanaka", "Taylor", "Thompson", "Torres",
    "Van Dijk", "Virtanen", "Wagner", "Walker", "Wang", "Weber", "Williams", "Wilson",
    "Wójcik", "Yamamoto", "Öztürk", "Zhang", "Zimmermann",
)  # fmt: skip
COMPANIES = (
    "Initech", "Globex", "Hooli", "Umbrella", "Cyberdyne", "Tyrell", "Wonka", "Soylent",
    "Stark Industries", "Wayne Enterprises", "Aperture Science", "Massive Dynamic",
)  # fmt: skip
WORKSPACE_NAMES = (
    "Data Platform", "Marketing Analytics", "Finance", "ML Research", "Customer Success",
    "Supply Chain", "Growth", "Risk & Compliance", "Product Analytics", "Data Science",
    "Sales Ops", "Security", "Infrastructure", "Payments", "Logistics", "HR Analytics",
)  # fmt: skip
ENVIRONMENTS = ("prod", "staging", "dev", "sandbox", "qa", "perf")
DAG_IDS = (
    "etl_orders_daily", "etl_customers_daily", "sync_salesforce", "sync_hubspot",
    "load_clickstream_hourly", "dbt_run_marts", "dbt_test_marts", "ml_train_churn",
    "ml_score_churn", "ml_feature_store", "export_finance_ledger", "reconcile_payments",
    "refresh_dashboards", "backfill_events", "ingest_s3_landing", "snapshot_postgres",
    "gdpr_erasure", "compute_kpis", "notify_slack_failures", "archive_logs",
)  # fmt: skip
DAG_TAGS = (
    "finance", "marketing", "ml", "critical", "pii", "daily", "hourly", "dbt", "ingestion",
    "reporting", "team-data", "team-growth",
)  # fmt: skip

# Organization roles and how common they are in a big organization.
ORG_ROLE_SPREAD = (
    ("ORGANIZATION_OWNER", 0.01),
    ("ORGANIZATION_BILLING_ADMIN", 0.02),
    ("ORGANIZATION_OBSERVE_ADMIN", 0.01),
    ("ORGANIZATION_OBSERVE_MEMBER", 0.01),
)
WORKSPACE_ROLE_WEIGHTS = {
    "WORKSPACE_OWNER": 5,
    "WORKSPACE_OPERATOR": 10,
    "WORKSPACE_AUTHOR": 30,
    "WORKSPACE_MEMBER": 45,
    "WORKSPACE_ACCESSOR": 10,
}
SHARE_WITH_WORKSPACE_ROLES = 0.60
SHARE_WITH_DEPLOYMENT_ROLE = 0.20
SHARE_WITH_DAG_ROLES = 0.10
SHARE_WITH_DAG_TAG_ROLES = 0.10

USER_COLUMNS = (
    "id", "username", "username_key", "email", "email_key", "email_verified", "full_name",
    "avatar_url", "status", "enabled",
    "builtin", "account_type", "realm", "idp_managed", "login_attempts", "attributes",
    "first_login_at", "last_login_at", "created_at", "updated_at",
)  # fmt: skip
MEMBERSHIP_COLUMNS = ("organization_id", "user_id", "role", "created_at")
# With `provisioned`: the columns that make a user an account the organization's identity
# provider manages (directory/provisioning.py), as a SCIM POST /Users leaves them.
PROVISIONED_COLUMNS = ("realm_id", "managed_by_organization_id", "primary_organization_id")
BINDING_COLUMNS = (
    "organization_id", "subject_type", "subject_id", "role", "scope_type", "scope_key",
    "workspace_id", "deployment_id", "dag_id", "dag_tag", "created_at", "created_by",
)  # fmt: skip

Row = tuple[Any, ...]

# --- ids -------------------------------------------------------------------------------------

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TRIPLES = tuple(a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET)
_T = len(_TRIPLES)  # 36**3


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


class IdSequence:
    """cuid-format ids: 'c' + 8 chars of milliseconds + a 6-char random tag + a 10-char counter.
    About 0.3 µs an id (tenantry.ids.new_id draws 16 random characters per id)."""

    def __init__(self, tag: str | None = None, millis: int | None = None) -> None:
        self.tag = tag or "".join(secrets.choice(_ALPHABET) for _ in range(6))
        when = time.time_ns() // 1_000_000 if millis is None else millis
        self.prefix = "c" + _base36(when, 8) + self.tag + "0"

    def __call__(self, n: int) -> str:
        t = _TRIPLES
        return self.prefix + t[n // (_T * _T) % _T] + t[n // _T % _T] + t[n % _T]


# --- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkInfo:
    """What was loaded; ids in creation order (user ids are `user_id(i)` for i < users)."""

    organization_id: str
    organization_name: str
    domain: str
    users: int
    workspace_ids: tuple[str, ...]
    deployment_ids: tuple[str, ...]
    owner_id: str  # users[0], always an ORGANIZATION_OWNER
    owner_username: str
    bindings: int
    bindings_by_scope: dict[str, int]
    members_by_role: dict[str, int]
    dag_ids: tuple[str, ...] = DAG_IDS
    dag_tags: tuple[str, ...] = DAG_TAGS
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


_NOT_DECOMPOSED = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "\u0131": "i"})


def ascii_name(name: str) -> str:
    """`Łukasz O'Brien` -> `lukaszobrien`: for e-mail local parts and slugs."""
    folded = (
        unicodedata.normalize("NFKD", name.translate(_NOT_DECOMPOSED))
        .encode("ascii", "ignore")
        .decode()
    )
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _weights_for(n: int) -> list[float]:
    """Cumulative weights 1/sqrt(i+1): a few big workspaces and a long tail, as in real orgs."""
    total, cumulative = 0.0, []
    for i in range(n):
        total += 1 / (i + 1) ** 0.5
        cumulative.append(total)
    return cumulative


class _Plan:
    """Deterministic (given the seed) description of the rows to write."""

    def __init__(
        self,
        *,
        users: int,
        workspaces: int,
        deployments_per_workspace: int,
        seed: int,
        name: str | None,
        domain: str | None,
        ids: IdSequence,
        provisioned: bool = False,
    ) -> None:
        self.users = users
        self.provisioned = provisioned
        self.seed = seed
        self.ids = ids
        self.now = utcnow().replace(microsecond=0)
        self.start = self.now - timedelta(days=3 * 365)
        self.span = (self.now - self.start).total_seconds()
        company = COMPANIES[seed % len(COMPANIES)]
        self.name = name or company
        self.domain = domain or f"{ascii_name(company)}-{ids.tag[:4]}.example.com"
        self.org_id = ids(0)
        self.workspaces: list[tuple[str, str]] = []  # (id, name)
        for w in range(workspaces):
            base = WORKSPACE_NAMES[w % len(WORKSPACE_NAMES)]
            suffix = f" {w // len(WORKSPACE_NAMES) + 1}" if w >= len(WORKSPACE_NAMES) else ""
            self.workspaces.append((ids(1 + w), base + suffix))
        self.deployments: list[tuple[str, str, str]] = []  # (id, workspace id, name)
        n = 1 + workspaces
        for ws_id, ws_name in self.workspaces:
            slug = "-".join(ws_name.lower().replace("&", "").split())
            for d in range(deployments_per_workspace):
                env = ENVIRONMENTS[d % len(ENVIRONMENTS)]
                suffix = f"-{d // len(ENVIRONMENTS) + 1}" if d >= len(ENVIRONMENTS) else ""
                self.deployments.append((ids(n), ws_id, f"{slug}-{env}{suffix}"))
                n += 1
        self.first_user_n = n
        self.ws_cumulative = _weights_for(len(self.workspaces))
        self.deps_by_ws: dict[str, list[str]] = {}
        for dep_id, ws_id, _ in self.deployments:
            self.deps_by_ws.setdefault(ws_id, []).append(dep_id)
        self.dep_ws = {dep_id: ws_id for dep_id, ws_id, _ in self.deployments}
        self.bindings_by_scope: Counter[str] = Counter()
        # distinct holders per (kind, key), as the holder_counts triggers would count them
        self.holders: Counter[tuple[str, str]] = Counter()
        self.members_by_role: Counter[str] = Counter()
        self._scopes: dict[str, _Held] = {}
        self._created: list[datetime] | None = None

    def rng(self, phase: str) -> random.Random:
        return random.Random(f"{self.seed}:{phase}")  # noqa: S311 - test data, not secrets

    def user_id(self, i: int) -> str:
        return self.ids(self.first_user_n + i)

    def created_at(self, i: int) -> datetime:
        """Users join steadily over three years; deterministic so every phase agrees. Worked
        out once (users, memberships and bindings all need it; 1.6 µs each at 1M users)."""
        if self._created is None:
            start, span, users = self.start, self.span, self.users
            self._created = [
                start + timedelta(seconds=int(span * (n + (n * 2654435761 % 1000) / 1000) / users))
                for n in range(users)
            ]
        return self._created[i]

    # -- rows --

    def organization_row(self) -> dict[str, Any]:
        return {
            "id": self.org_id,
            "name": self.name,
            "billing_email": f"billing@{self.domain}",
            "is_scim_enabled": False,
            "support_plan": "BUSINESS_CRITICAL",
            "product": "HOSTED",
            "status": "ACTIVE",
            "member_count": self.users,
            "created_at": self.start,
            "updated_at": self.start,
        }

    def workspace_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": ws_id,
                "organization_id": self.org_id,
                "name": name,
                "description": f"{name} pipelines",
                "cicd_enforced_default": False,
                "created_at": self.start,
                "updated_at": self.start,
            }
            for ws_id, name in self.workspaces
        ]

    def deployment_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": dep_id,
                "organization_id": self.org_id,
                "workspace_id": ws_id,
                "name": name,
                "description": "",
                "spec": {"type": "STANDARD", "executor": "CELERY", "isHighAvailability": False},
                "created_at": self.start,
                "updated_at": self.start,
            }
            for dep_id, ws_id, name in self.deployments
        ]

    def user_rows(self, empty_json: Any) -> Iterator[Row]:
        rng = self.rng("users")
        seen: Counter[str] = Counter()
        firsts = [(n, ascii_name(n)) for n in FIRST_NAMES]
        lasts = [(n, ascii_name(n)) for n in LAST_NAMES]
        now, domain, user_id, created_at = self.now, self.domain, self.user_id, self.created_at
        managed, org_id = self.provisioned, self.org_id
        for i in range(self.users):
            first, first_a = firsts[int(rng.random() * len(firsts))]
            last, last_a = lasts[int(rng.random() * len(lasts))]
            local = f"{first_a}.{last_a}"
            seen[local] += 1
            if seen[local] > 1:
                local = f"{local}{seen[local]}"
            if rng.random() < 0.05:  # some people typed their address capitalised
                local = ".".join(part.capitalize() for part in local.split("."))
            username = f"{local}@{domain}"
            uid = user_id(i)
            created = created_at(i)
            r = rng.random()
            status = "ACTIVE" if r < 0.97 else ("INACTIVE" if r < 0.99 else "PENDING")
            if status == "ACTIVE":
                last_login: datetime | None = created + (now - created) * rng.random()
                first_login: datetime | None = created
            else:
                first_login = last_login = None
            updated = created if rng.random() < 0.7 else created + (now - created) * rng.random()
            avatar = f"https://avatars.example.com/u/{uid}.png" if rng.random() < 0.6 else ""
            key = username.lower()  # = names.username_key(username) for an ASCII address
            row = (
                uid,
                username,
                key,
                username,
                key,
                not managed,  # an identity provider's word proves no mailbox
                f"{first} {last}",
                avatar,
                status,
                True,
                False,
                "User",
                "scim" if managed else "native",
                managed,
                0,
                empty_json,
                first_login,
                last_login,
                created,
                updated,
            )
            yield (*row, org_id, org_id, org_id) if managed else row

    def user_columns(self) -> tuple[str, ...]:
        return USER_COLUMNS + PROVISIONED_COLUMNS if self.provisioned else USER_COLUMNS

    def membership_rows(self) -> Iterator[Row]:
        rng = self.rng("org-roles")
        cumulative, total = [], 0.0
        for role, share in ORG_ROLE_SPREAD:
            total += share
            cumulative.append((total, role))
        org_id, counts = self.org_id, self.members_by_role
        for i in range(self.users):
            r = rng.random()
            role = "ORGANIZATION_MEMBER"
            if i == 0:
                role = "ORGANIZATION_OWNER"
            else:
                for bound, name in cumulative:
                    if r < bound:
                        role = name
                        break
            counts[role] += 1
            yield (org_id, self.user_id(i), role, self.created_at(i))

    def _scope(self, key: str, make: Any, *args: str) -> _Held:
        held = self._scopes.get(key)
        if held is None:
            scope: Scope = make(self.org_id, *args)
            held = self._scopes[key] = _Held(
                scope.key,
                scope.type.value,
                scope.workspace_id,
                scope.deployment_id,
                scope.dag_id,
                scope.dag_tag,
                tuple(_filter_keys(scope)),
            )
        return held

    def binding_rows(self) -> Iterator[Row]:
        """Per user: workspace roles, a deployment role, DAG roles by dagId, by dagTag, each
        with its share; one binding per (user, scope). The hot loop of the loader (9 µs a
        binding), hence the cached scope records and `_pick` instead of `rng.choices`."""
        rng = self.rng("bindings")
        random_ = rng.random
        ws_ids = [ws_id for ws_id, _ in self.workspaces]
        dep_ids = [dep_id for dep_id, _, _ in self.deployments]
        ws_roles = list(WORKSPACE_ROLE_WEIGHTS)
        ws_role_cum = _cumulative(WORKSPACE_ROLE_WEIGHTS[r] for r in ws_roles)
        tag_cum = _weights_for(len(DAG_TAGS))
        ws_cum = self.ws_cumulative
        assert set(ws_roles) == set(WORKSPACE_ROLES)
        org_id, counts, holders = self.org_id, self.bindings_by_scope, self.holders
        scope, user_id, created_at = self._scope, self.user_id, self.created_at
        deps_by_ws, dep_ws = self.deps_by_ws, self.dep_ws
        for i in range(self.users):
            held: list[tuple[_Held, str]] = []
            if ws_ids and random_() < SHARE_WITH_WORKSPACE_ROLES:
                k = min(len(ws_ids), 1 if (r := random_()) < 0.6 else (2 if r < 0.9 else 3))
                chosen: set[str] = set()
                while len(chosen) < k:
                    chosen.add(_pick(random_, ws_ids, ws_cum))
                for ws_id in sorted(chosen):
                    held.append(
                        (
                            scope(f"W{ws_id}", scopes.workspace, ws_id),
                            _pick(random_, ws_roles, ws_role_cum),
                        )
                    )
            if dep_ids and random_() < SHARE_WITH_DEPLOYMENT_ROLE:
                own = [d for h, _ in held for d in deps_by_ws.get(h.workspace_id or "", ())]
                pool = own if own and random_() < 0.7 else dep_ids
                dep_id = pool[int(random_() * len(pool))]
                ws_id = dep_ws[dep_id]
                held.append(
                    (scope(f"D{dep_id}", scopes.deployment, ws_id, dep_id), "DEPLOYMENT_ADMIN")
                )
            if dep_ids and random_() < SHARE_WITH_DAG_ROLES:
                for _ in range(1 if random_() < 0.7 else 2):
                    dep_id = dep_ids[int(random_() * len(dep_ids))]
                    dag_id = DAG_IDS[int(random_() * len(DAG_IDS))]
                    ws_id = dep_ws[dep_id]
                    at = scope(f"G{dep_id}{dag_id}", scopes.dag, ws_id, dep_id, dag_id)
                    held.append((at, "DAG_VIEWER" if random_() < 0.6 else "DAG_AUTHOR"))
            if dep_ids and random_() < SHARE_WITH_DAG_TAG_ROLES:
                dep_id = dep_ids[int(random_() * len(dep_ids))]
                tag = _pick(random_, DAG_TAGS, tag_cum)
                ws_id = dep_ws[dep_id]
                at = scope(f"T{dep_id}{tag}", scopes.dag_tag, ws_id, dep_id, tag)
                held.append((at, "DAG_VIEWER" if random_() < 0.5 else "DAG_AUTHOR"))
            if not held:
                continue
            uid, created = user_id(i), created_at(i)
            seen: set[str] = set()
            within: list[tuple[tuple[str, str], ...]] = []  # the filter values that find them
            for h, role in held:
                if h.key in seen:  # one binding per (subject, scope), as the unique key demands
                    continue
                seen.add(h.key)
                counts[h.type] += 1
                within.append(h.filter_keys)
                yield (
                    org_id,
                    "user",
                    uid,
                    role,
                    h.type,
                    h.key,
                    h.workspace_id,
                    h.deployment_id,
                    h.dag_id,
                    h.dag_tag,
                    created,
                    None,
                )
            for held_key in within[0] if len(within) == 1 else set().union(*within):
                holders[held_key] += 1

    def holder_count_rows(self) -> list[dict[str, Any]]:
        return [
            {"organization_id": self.org_id, "kind": kind, "key": key, "holders": n}
            for (kind, key), n in sorted(self.holders.items())
        ]


class _Held(NamedTuple):
    """What a binding at one scope writes, worked out once per scope."""

    key: str
    type: str
    workspace_id: str | None
    deployment_id: str | None
    dag_id: str | None
    dag_tag: str | None
    filter_keys: tuple[tuple[str, str], ...]


def _pick(random_: Any, population: Sequence[str], cum_weights: Sequence[float]) -> str:
    """`Random.choices(population, cum_weights=...)[0]`, drawing the same number the same way
    (so a seed gives the same data), without its per-call set-up."""
    return population[bisect(cum_weights, random_() * cum_weights[-1], 0, len(population) - 1)]


def _filter_keys(scope: Scope) -> Iterator[tuple[str, str]]:
    """The holder_counts keys a user binding at `scope` counts in (see migration 0005)."""
    if scope.workspace_id is not None:
        yield ("workspace", scope.workspace_id)
    if scope.deployment_id is not None:
        yield ("deployment", scope.deployment_id)
    if scope.type is ScopeType.DAG and scope.dag_id is not None:
        yield ("dag", scope.dag_id)
    if scope.type is ScopeType.DAG_TAG and scope.dag_tag is not None:
        yield ("dag_tag", scope.dag_tag)


def _cumulative(weights: Iterable[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


# --- writing ---------------------------------------------------------------------------------


async def _write_sqlite(
    conn: AsyncConnection, table: Table, columns: Sequence[str], rows: Iterable[Row], batch: int
) -> None:
    """executemany of a compiled INSERT with each column's own bind processor applied by hand
    (exactly what Core would store), pipelined: the next batch is prepared while SQLite, in
    aiosqlite's thread, writes the previous one."""
    dialect = conn.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    order = [columns.index(name) for name in compiled.positiontup or ()]
    assert sorted(order) == list(range(len(columns))), "every column is bound once"
    processors: list[Any] = [
        table.c[columns[i]].type.dialect_impl(dialect).bind_processor(dialect) for i in order
    ]
    sql = str(compiled)

    def prepare(chunk: list[Row]) -> list[Row]:
        out = []
        for row in chunk:
            out.append(
                tuple(
                    row[i] if proc is None else proc(row[i])
                    for i, proc in zip(order, processors, strict=True)
                )
            )
        return out

    pending: asyncio.Future[Any] | None = None
    for chunk in _batches(rows, batch):
        params = prepare(chunk)
        if pending is not None:
            await pending
        pending = asyncio.ensure_future(conn.exec_driver_sql(sql, params))
    if pending is not None:
        await pending


async def _write_copy(
    conn: AsyncConnection, table: Table, columns: Sequence[str], rows: Iterable[Row]
) -> None:
    """COPY ... FROM STDIN (binary) through the asyncpg connection under SQLAlchemy's, in the
    same transaction; asyncpg streams the generator with flow control."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    assert driver.is_in_transaction(), "COPY must run inside the load's transaction"
    await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))


@asynccontextmanager
async def _database(target: str | Database) -> AsyncIterator[Database]:
    if isinstance(target, Database):
        yield target
        return
    database = Database(load_settings(database_url=target))
    try:
        yield database
    finally:
        await database.dispose()


async def load_organization(
    target: str | Database,
    *,
    users: int,
    workspaces: int,
    deployments_per_workspace: int,
    seed: int,
    name: str | None = None,
    domain: str | None = None,
    analyze: bool = True,
    trust_references: bool = True,
    build_indexes_after: bool | None = None,
    batch_size: int = 5000,
    provisioned: bool = False,
) -> BulkInfo:
    """Create one organization with `users` members, `workspaces` workspaces of
    `deployments_per_workspace` deployments each and a realistic spread of roles:
    ~1% owners, 2% billing admins, 2% observe roles, the rest members; ~60% of users hold 1-3
    workspace roles, ~20% a deployment role, ~10% DAG roles by dagId, ~10% by dagTag.
    The schema must exist (`tenantry db upgrade`). Runs ANALYZE (PostgreSQL: VACUUM ANALYZE)
    afterwards unless told not to.

    On PostgreSQL with `trust_references` (and a superuser), the per-row foreign-key triggers
    are skipped for this transaction (`session_replication_role = replica`, as pg_restore
    --disable-triggers does): every reference points at a row written here, and the checks
    cost ~40% of the load. Without superuser rights the checks simply run.

    On PostgreSQL with `build_indexes_after` (by default: when users, memberships and
    role_bindings hold no rows yet, as in a new instance or a capacity test), the secondary
    indexes of those tables are dropped in the load's transaction and built again from the
    loaded rows before it commits, as pg_restore does: one sort per index instead of a million
    random B-tree insertions each. The rebuilt unique indexes check uniqueness as the live ones
    would. It holds an exclusive lock on the three tables until the commit, which is why it is
    not the default for a directory that already has users.

    With `provisioned`, every user is an account the organization's identity provider
    manages (realm `scim`, `idp_managed`, address not verified, managed by the organization),
    as if its SCIM token had created them all (bench.scim's 1M-user `filter`)."""
    if users < 1 or workspaces < 0 or deployments_per_workspace < 0:
        raise ValueError("need at least one user and no negative counts")
    plan = _Plan(
        users=users,
        workspaces=workspaces,
        deployments_per_workspace=deployments_per_workspace,
        seed=seed,
        name=name,
        domain=domain,
        ids=IdSequence(),
        provisioned=provisioned,
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    async with _database(target) as database:
        postgres = not database.settings.is_sqlite
        async with database.engine.connect() as plain:
            conn = await plain.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                if not postgres:
                    await conn.exec_driver_sql("PRAGMA cache_size=-262144")
                if postgres and trust_references:
                    await _skip_reference_checks(conn)
                aside: list[_Index] = []
                bulk_tables = [_table(User), _table(Membership), _table(RoleBinding)]
                if postgres and (
                    build_indexes_after
                    or (build_indexes_after is None and await _all_empty(conn, bulk_tables))
                ):
                    aside = await _set_indexes_aside(conn, [t.name for t in bulk_tables])
                mark = time.perf_counter()
                # Through SQLAlchemy first: this also opens the driver-level transaction.
                await conn.execute(insert(_table(Organization)), [plan.organization_row()])
                if plan.workspaces:
                    await conn.execute(insert(_table(Workspace)), plan.workspace_rows())
                if plan.deployments:
                    await conn.execute(insert(_table(Deployment)), plan.deployment_rows())
                paused = {"organization_id": plan.org_id, "kind": "paused", "key": ""}
                await conn.execute(insert(_table(HolderCount)), [{**paused, "holders": 0}])
                user_rows = plan.user_rows("{}" if postgres else {})
                phases: list[tuple[str, Table, Sequence[str], Iterable[Row]]] = [
                    ("users", _table(User), plan.user_columns(), user_rows),
                    ("memberships", _table(Membership), MEMBERSHIP_COLUMNS, plan.membership_rows()),
                    ("role_bindings", _table(RoleBinding), BINDING_COLUMNS, plan.binding_rows()),
                ]
                timings["organization"] = time.perf_counter() - mark
                for phase, table, columns, rows in phases:
                    mark = time.perf_counter()
                    if postgres:
                        await _write_copy(conn, table, columns, rows)
                    else:
                        await _write_sqlite(conn, table, columns, rows, batch_size)
                    timings[phase] = time.perf_counter() - mark
                if aside:
                    mark = time.perf_counter()
                    await _build_indexes(conn, aside)
                    timings["indexes"] = time.perf_counter() - mark
                mark = time.perf_counter()
                counters = _table(HolderCount)
                await conn.execute(
                    counters.delete().where(
                        *(counters.c[name] == value for name, value in paused.items())
                    )
                )
                if plan.holders:
                    await conn.execute(insert(counters), plan.holder_count_rows())
                timings["holder_counts"] = time.perf_counter() - mark
        if analyze:
            mark = time.perf_counter()
            await _analyze(database)
            timings["analyze"] = time.perf_counter() - mark
    return BulkInfo(
        organization_id=plan.org_id,
        organization_name=plan.name,
        domain=plan.domain,
        users=users,
        workspace_ids=tuple(ws_id for ws_id, _ in plan.workspaces),
        deployment_ids=tuple(dep_id for dep_id, _, _ in plan.deployments),
        owner_id=plan.user_id(0),
        owner_username=next(plan.user_rows(""))[1],
        bindings=sum(plan.bindings_by_scope.values()),
        bindings_by_scope=dict(plan.bindings_by_scope),
        members_by_role=dict(plan.members_by_role),
        seconds=time.perf_counter() - started,
        timings=timings,
    )


async def _skip_reference_checks(conn: AsyncConnection) -> None:
    try:
        async with conn.begin_nested():
            await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    except DBAPIError:
        pass  # not a superuser: PostgreSQL checks the foreign keys row by row


@dataclass(frozen=True)
class _Index:
    table: str
    name: str
    definition: str  # CREATE INDEX ... or, for a UNIQUE constraint, its constraint definition
    constraint: bool


async def _all_empty(conn: AsyncConnection, tables: Sequence[Table]) -> bool:
    for table in tables:
        if await conn.scalar(select(exists().select_from(table))):
            return False
    return True


async def _set_indexes_aside(conn: AsyncConnection, tables: Sequence[str]) -> list[_Index]:
    """Drop the secondary indexes of `tables` (in this transaction) and say how to build them
    again. Kept: primary keys and the unique keys foreign keys point at (dropping those would
    take the foreign keys with them)."""
    rows = await conn.execute(
        text("""
        SELECT t.relname, i.relname, c.conname IS NOT NULL,
               coalesce(pg_get_constraintdef(c.oid), pg_get_indexdef(x.indexrelid))
        FROM pg_index x
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
        WHERE t.relnamespace = current_schema()::regnamespace
          AND t.relname = ANY(:tables)
          AND NOT x.indisprimary
          AND NOT EXISTS (
              SELECT FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = x.indexrelid
          )
        ORDER BY t.relname, i.relname
        """),
        {"tables": list(tables)},
    )
    aside = [_Index(table, name, sql, constraint) for table, name, constraint, sql in rows]
    for index in aside:
        if index.constraint:
            await conn.exec_driver_sql(f'ALTER TABLE {index.table} DROP CONSTRAINT "{index.name}"')
        else:
            await conn.exec_driver_sql(f'DROP INDEX "{index.name}"')
    return aside


async def _build_indexes(conn: AsyncConnection, aside: Sequence[_Index]) -> None:
    # Sorts in memory instead of spilling (the server default is 64 MB); this transaction only.
    await conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    for index in aside:
        if index.constraint:
            await conn.exec_driver_sql(
                f'ALTER TABLE {index.table} ADD CONSTRAINT "{index.name}" {index.definition}'
            )
        else:
            await conn.exec_driver_sql(index.definition)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _analyze(database: Database) -> None:
    """Fresh statistics, so the planner sees the new sizes at once; on PostgreSQL also VACUUM,
    which sets the visibility map (index-only scans) as autovacuum would after a big insert."""
    async with database.engine.connect() as conn:
        if database.settings.is_sqlite:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
        else:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(
                "VACUUM ANALYZE organizations, workspaces, deployments, users, memberships, "
                "role_bindings, holder_counts"
            )
