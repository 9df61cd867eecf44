"""The plumbing of the rule matrix: what a face answers (Reply), who calls (Account,
Credential), what a refusal must look like (Refusal), how a face says it lacks an operation
(NotApplicable), and the Rig every adapter works on (one app, one database, one mailer).

Nothing here knows a face's vocabulary; that is tests/rules/faces.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection

from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.config import Settings
from tenantry.db.base import Base
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Membership, RoleBinding, Token, User
from tenantry.directory import accounts, system_api_tokens
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import system_principal
from tenantry.ids import new_id
from tenantry.mail import Mail
from tests.factories import World, bearer

NATIVE = "/tenantry/v1"
PASSWORD = "violet-staircase-42"
NEW_PASSWORD = "Amber-lighthouse-77-quietly"  # also strong to Unleash's test
WRONG_PASSWORD = "not-the-password-31"
_numbers = itertools.count(1)


def unique(prefix: str = "rule") -> str:
    """A fresh name, ASCII and valid as a user name on every face (ECE's are strict)."""
    return f"{prefix}{next(_numbers)}"


@dataclass(frozen=True)
class Reply:
    """What one face operation answered: HTTP status and parsed body, or for the CLI its
    exit code (as `status`) and its output (as `text`)."""

    status: int
    body: Any
    text: str
    ok: bool
    response: httpx.Response | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> Reply:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return cls(
            response.status_code, body, response.text, response.is_success, response=response
        )

    def __str__(self) -> str:
        return f"{self.status}: {self.text[:400]}"


@dataclass(frozen=True)
class Account:
    """A user with a password (and their id and login name)."""

    id: str
    username: str
    password: str = PASSWORD


@dataclass(frozen=True)
class Credential:
    """A secret and what it is: a sign-in session, a personal token (native personal token,
    ECE API key, Unleash PAT), an organization's SCIM token, or a system API token (no user,
    a SYSTEM role: Unleash's admin API token). A face sends each kind as its clients do."""

    secret: str
    kind: Literal["session", "personal", "scim", "system"]


@dataclass(frozen=True)
class Refusal:
    """What a refusal must be: one of `statuses`, in the face's own error body, naming
    `field` and (ECE) carrying `code` when given."""

    statuses: tuple[int, ...]
    field: str | None = None
    code: str | None = None

    @classmethod
    def of(cls, *statuses: int, field: str | None = None, code: str | None = None) -> Refusal:
        return cls(statuses, field, code)


@dataclass(frozen=True)
class Route:
    """A request a face must answer 404 or 405: proof that it really lacks an operation
    (when someone adds the route, the gap test fails and the adapter must join the rule)."""

    method: str
    path: str


@dataclass(frozen=True)
class Command:
    """A CLI command that must not exist (same purpose as Route)."""

    args: tuple[str, ...]


@dataclass(frozen=True)
class NotApplicable:
    """A face has no such operation: why, and where that can be checked."""

    reason: str
    probe: Route | Command | None = None


class FakeMailer:
    """Keeps every mail the app sends (invite links, confirmation links)."""

    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, to: str, subject: str, text: str) -> None:
        self.sent.append(Mail(to, subject, text))


@dataclass(frozen=True)
class Tenants:
    """Two organizations: the caller owns A; B (with a workspace, a deployment and a member)
    is foreign to them. `made_up` has ids of the same shape that name nothing."""

    owner_a: Account
    org_a: str
    real: Mapping[str, str]
    made_up: Mapping[str, str]

    def ids(self, made_up: bool) -> Mapping[str, str]:
        return self.made_up if made_up else self.real


# Columns that signing in, elevating and merely using a credential change (the adapters
# sign in inside their operations): a snapshot leaves them out, and session tokens too.
_VOLATILE = frozenset(
    {
        ("tokens", "last_used_at"),
        ("tokens", "expires_at"),
        ("users", "seen_at"),
        ("users", "first_login_at"),
        ("users", "last_login_at"),
        ("users", "elevated_until"),
    }
)
Snapshot = dict[str, list[str]]


@dataclass
class Rig:
    """One app over one database, and direct access to that database for checking."""

    client: httpx.AsyncClient
    world: World
    database: Database
    settings: Settings
    mailer: FakeMailer
    _hasher: Hasher = field(default_factory=lambda: Hasher(2, 19456, 1))

    # --- making things ---------------------------------------------------------------------

    async def account(
        self,
        username: str | None = None,
        *,
        system_role: str | None = None,
        full_name: str = "",
        email: str | None = None,
    ) -> Account:
        name = username or f"{unique()}@example.com"
        fields: dict[str, Any] = {} if email is None else {"email": email}
        user = await self.world.user(name, full_name, **fields)
        async with self.database.transaction() as db:
            await accounts.set_password(db, self._hasher, system_principal(), user.id, PASSWORD)
        if system_role is not None:
            await self.world.system_role(user, system_role)
        return Account(user.id, name)

    async def system_api_token(self, role: str = "SYSTEM_ADMIN") -> tuple[str, Credential]:
        """(its id, the credential) of a new system API token, made by the operator."""
        async with self.database.transaction() as db:
            made = await system_api_tokens.create_system_api_token(
                db, system_principal(), role=role, name=unique("system"), expires_in_days=1
            )
        assert made.secret is not None
        return made.token.id, Credential(made.secret, "system")

    async def revoke_system_api_token(self, token_id: str) -> None:
        async with self.database.transaction() as db:
            await system_api_tokens.revoke_system_api_token(db, system_principal(), token_id)

    async def two_tenants(self) -> Tenants:
        org_a = await self.world.org("Alpha")
        owner = await self.account()
        await self.world.roles(org_a, await self.user(owner.id), "ORGANIZATION_OWNER")
        org_b = await self.world.org("Bravo")
        ws_b = await self.world.workspace(org_b, "bravo-ws")
        dep_b = await self.world.deployment(ws_b, "bravo-dep")
        member_b, _ = await self.world.member(org_b, full_name="Bravo Member")
        real = {
            "organization": org_b.id,
            "workspace": ws_b.id,
            "deployment": dep_b.id,
            "user": member_b.id,
        }
        return Tenants(owner, org_a.id, real, {kind: new_id() for kind in real})

    # --- signing in through the native face (every face shares sessions) --------------------

    async def native_login(self, username: str, password: str) -> httpx.Response:
        return await self.client.post(
            f"{NATIVE}/auth/login", json={"username": username, "password": password}
        )

    async def native_session(self, account: Account) -> Credential:
        r = await self.native_login(account.username, account.password)
        assert r.status_code == 200, r.text
        return Credential(r.json()["token"], "session")

    async def native_elevate(self, credential: Credential, password: str) -> Credential:
        r = await self.client.post(
            f"{NATIVE}/auth/elevate", json={"password": password}, headers=bearer(credential.secret)
        )
        assert r.status_code == 200, r.text
        return credential

    async def signs_in(self, username: str, password: str) -> bool:
        return (await self.native_login(username, password)).status_code == 200

    async def warm(self, credential: Credential) -> None:
        """Use the credential until the caches know it (on PostgreSQL the first use only
        starts the caches' change listener)."""
        for _ in range(2):
            assert await self.authenticates(credential)

    async def authenticates(self, credential: Credential) -> bool:
        """Whether the secret still gets a user in (a cached GET: a revoked session must be
        refused even when it was just used)."""
        r = await self.client.get("/v1/users/self", headers=bearer(credential.secret))
        assert r.status_code in (200, 401), r.text
        return r.status_code == 200

    # --- reading the database ----------------------------------------------------------------

    async def user(self, user_id: str) -> User:
        async with self.database.transaction(write=False) as db:
            found = await db.scalar(select(User).where(User.id == user_id))
            assert found is not None, user_id
            db.expunge(found)
            return found

    async def user_named(self, username: str) -> User | None:
        async with self.database.transaction(write=False) as db:
            found = await db.scalar(select(User).where(User.username == username))
            if found is not None:
                db.expunge(found)
            return found

    async def is_member(self, org_id: str, user_id: str) -> bool:
        async with self.database.transaction(write=False) as db:
            return await db.get(Membership, (org_id, user_id)) is not None

    async def user_count(self) -> int:
        async with self.database.transaction(write=False) as db:
            return int(await db.scalar(select(func.count(User.id))) or 0)

    async def system_roles(self, user_id: str) -> list[str]:
        async with self.database.transaction(write=False) as db:
            rows = await db.scalars(
                select(RoleBinding.role).where(
                    RoleBinding.subject_type == "user",
                    RoleBinding.subject_id == user_id,
                    RoleBinding.scope_key == SYSTEM_SCOPE.key,
                )
            )
            return sorted(rows)

    async def minted_tokens(self) -> int:
        """Tokens that are not sign-in sessions (personal and API tokens)."""
        async with self.database.transaction(write=False) as db:
            query = select(func.count(Token.id)).where(Token.kind != "session")
            return int(await db.scalar(query) or 0)

    async def audit_mark(self) -> int:
        async with self.database.transaction(write=False) as db:
            return int(await db.scalar(select(func.max(AuditEvent.id))) or 0)

    async def events(
        self, since: int, *, action: str | None = None, target_id: str | None = None
    ) -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.id > since)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        if target_id is not None:
            query = query.where(AuditEvent.target_id == target_id)
        async with self.database.transaction(write=False) as db:
            found = list(await db.scalars(query.order_by(AuditEvent.id)))
            db.expunge_all()
            return found

    async def snapshot(self) -> Snapshot:
        """Every row of every table, but sessions, the columns signing in and using tokens
        change, and the audit events of signing in: what a refused request must leave
        alone."""
        result: Snapshot = {}
        async with self.database.transaction(write=False) as db:
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.c if (table.name, c.name) not in _VOLATILE]
                query = select(*columns)
                if table.name == "audit_events":
                    query = query.where(
                        table.c.action.not_like("auth.%"), table.c.action != "token.first_use"
                    )
                if table.name == "tokens":
                    query = query.where(table.c.kind != "session")
                rows = (await db.execute(query)).all()
                result[table.name] = sorted(repr(tuple(row)) for row in rows)
        return result

    @contextmanager
    def statements(self) -> Iterator[list[str]]:
        """The SQL statements the app sends while the block runs."""
        sent: list[str] = []

        def count(conn: Connection, cursor: Any, statement: str, *args: Any, **kwargs: Any) -> None:
            sent.append(" ".join(statement.split())[:120])

        engine = self.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            yield sent
        finally:
            event.remove(engine, "before_cursor_execute", count)


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """The rows that appeared or disappeared, table by table (empty: nothing written)."""
    lines = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        lines += [f"{table} - {row}" for row in sorted(old - new)]
        lines += [f"{table} + {row}" for row in sorted(new - old)]
    return lines
