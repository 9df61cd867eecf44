"""holder_counts (the totalCount of a member list with one filter) stays exact whoever changes
the role bindings: role grants and revocations, teams, deleted users, deployments, workspaces
and organizations, raw SQL, the bulk loader, and two writers at once."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import httpx
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.scopes import ScopeType
from tenantry.clock import utcnow
from tenantry.db.engine import Database
from tenantry.db.models import Deployment, Organization, RoleBinding, User, Workspace
from tenantry.db.models.directory import HolderCount, HolderCountDelta
from tenantry.devdata.bulk import load_organization
from tenantry.directory import deployments, organizations, teams, users, workspaces
from tenantry.directory.members import DagRole
from tenantry.identity.principals import system_principal
from tests.factories import World, bearer

Key = tuple[str, str, str]  # organization, kind, key


def filter_keys(binding: RoleBinding) -> set[tuple[str, str]]:
    """The holder_counts keys (kind, key) a user binding counts in: the member-list filter
    values that find its user (migration 0005's triggers use the same rule): the oracle."""
    keys: set[tuple[str, str]] = set()
    if binding.subject_type != "user" or binding.organization_id is None:
        return keys
    if binding.workspace_id is not None:
        keys.add(("workspace", binding.workspace_id))
    if binding.deployment_id is not None:
        keys.add(("deployment", binding.deployment_id))
    if binding.scope_type == ScopeType.DAG.value and binding.dag_id is not None:
        keys.add(("dag", binding.dag_id))
    if binding.scope_type == ScopeType.DAG_TAG.value and binding.dag_tag is not None:
        keys.add(("dag_tag", binding.dag_tag))
    return keys


async def _truth(database: Database) -> dict[Key, int]:
    """Distinct users per filter value, counted from the bindings themselves."""
    holders: dict[Key, set[str]] = defaultdict(set)
    async with database.transaction(write=False) as db:
        for b in await db.scalars(select(RoleBinding)):
            for kind, key in filter_keys(b):
                holders[(b.organization_id or "", kind, key)].add(b.subject_id)
    return {k: len(v) for k, v in holders.items()}


async def _kept(database: Database) -> dict[Key, int]:
    """Each counter: its row plus the deltas not folded into it yet (migration 0009)."""
    async with database.transaction(write=False) as db:
        rows = (await db.execute(select(HolderCount))).scalars().all()
        deltas = (await db.execute(select(HolderCountDelta))).scalars().all()
    kept: Counter[Key] = Counter({(r.organization_id, r.kind, r.key): r.holders for r in rows})
    for d in deltas:
        kept[(d.organization_id, d.kind, d.key)] += d.delta
    assert all(n >= 0 for n in kept.values()), kept
    assert not [r for r in rows if r.kind == "paused"]
    return {k: n for k, n in kept.items() if n}


async def _deltas(database: Database) -> int:
    async with database.transaction(write=False) as db:
        return int(await db.scalar(select(func.count()).select_from(HolderCountDelta)) or 0)


async def _check(database: Database) -> dict[Key, int]:
    truth = await _truth(database)
    assert await _kept(database) == truth
    return truth


async def _listed(
    client: httpx.AsyncClient, token: str, org_id: str, **params: str | list[str] | None
) -> tuple[int, set[str]]:
    r = await client.get(
        f"/v1/organizations/{org_id}/users", params={**params, "limit": 1000}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body["totalCount"], {u["id"] for u in body["users"]}


_PARAM = {"workspace": "workspaceId", "deployment": "deploymentId", "dag": "dagId"}


async def _check_api(
    database: Database, client: httpx.AsyncClient, token: str, org_id: str
) -> None:
    """Every one-filter list of the organization: totalCount = the users listed = the truth."""
    truth = await _check(database)
    async with database.transaction(write=False) as db:
        ws_ids = await db.scalars(select(Workspace.id))
        dep_ids = await db.scalars(select(Deployment.id))
        keys = {("workspace", w) for w in ws_ids} | {("deployment", d) for d in dep_ids}
    keys |= {(kind, key) for org, kind, key in truth if org == org_id}
    for kind, key in sorted(keys):
        param: dict[str, str | list[str]] = (
            {"dagTags": [key]} if kind == "dag_tag" else {_PARAM[kind]: key}
        )
        total, ids = await _listed(client, token, org_id, **param)
        assert total == len(ids) == truth.get((org_id, kind, key), 0), (kind, key)


async def test_counts_follow_grants_revocations_teams_and_deletions(
    database: Database, world: World, client: httpx.AsyncClient
) -> None:
    org = await world.org()
    other_org = await world.org("Other")
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    d1, d2 = await world.deployment(ws1, "d1"), await world.deployment(ws2, "d2")
    d1b = await world.deployment(ws1, "d1b")
    other_ws = await world.workspace(other_org)
    admin = await world.admin()
    token = await world.token(admin)
    a, b, c = await world.user(), await world.user(), await world.user()

    # a holds ws1 twice (a workspace role and a deployment role inside it): counted once
    await world.roles(
        org,
        a,
        workspaces=[(ws1.id, "WORKSPACE_MEMBER")],
        deployments=[(d1.id, "DEPLOYMENT_ADMIN")],
        dags=[
            DagRole(d1.id, "DAG_VIEWER", dag_tag="finance"),
            DagRole(d2.id, "DAG_VIEWER", dag_tag="finance"),
            DagRole(d1b.id, "DAG_AUTHOR", dag_id="etl"),
        ],
    )
    await world.roles(
        org, b, workspaces=[(ws1.id, "WORKSPACE_OWNER"), (ws2.id, "WORKSPACE_MEMBER")]
    )
    await world.roles(other_org, b, workspaces=[(other_ws.id, "WORKSPACE_MEMBER")])
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws1.id)] == 2
    assert counts[(org.id, "dag_tag", "finance")] == 1
    assert counts[(other_org.id, "workspace", other_ws.id)] == 1
    await _check_api(database, client, token, org.id)

    # teams grant roles, but the filters list users by their own bindings: no change
    await world.roles(org, c)
    team = await world.team(org, members=[a, c], workspaces=[(ws1.id, "WORKSPACE_MEMBER")])
    assert (await _check(database))[(org.id, "workspace", ws1.id)] == 2
    async with database.transaction() as db:
        await teams.delete_team(db, system_principal(), org.id, team.id)
    await _check_api(database, client, token, org.id)

    # revocations: a keeps ws1 through the deployment role only, then loses it
    await world.roles(org, a, deployments=[(d1.id, "DEPLOYMENT_ADMIN")])
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws1.id)] == 2
    assert (org.id, "dag_tag", "finance") not in counts
    await world.roles(org, a, workspaces=[(ws2.id, "WORKSPACE_AUTHOR")])
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws1.id)] == 1
    assert counts[(org.id, "workspace", ws2.id)] == 2
    await _check_api(database, client, token, org.id)

    # deleting a deployment: c only held ws1 through it
    await world.roles(org, c, deployments=[(d1b.id, "DEPLOYMENT_ADMIN")])
    assert (await _check(database))[(org.id, "workspace", ws1.id)] == 2
    async with database.transaction() as db:
        await deployments.delete_deployment(db, system_principal(), org.id, d1b.id)
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws1.id)] == 1
    async with database.transaction(write=False) as db:
        assert await db.get(HolderCount, (org.id, "deployment", d1b.id)) is None

    # deleting a user: every organization's counts
    async with database.transaction() as db:
        await users.delete_user(db, system_principal(), b.id)
    counts = await _check(database)
    assert (other_org.id, "workspace", other_ws.id) not in counts
    await _check_api(database, client, token, org.id)

    # deleting a workspace and then the organization: their rows go with them
    await world.roles(org, c, dags=[DagRole(d2.id, "DAG_VIEWER", dag_id="etl")])
    async with database.transaction() as db:
        await workspaces.delete_workspace(db, system_principal(), org.id, ws2.id)
    await _check(database)
    async with database.transaction(write=False) as db:
        assert await db.get(HolderCount, (org.id, "workspace", ws2.id)) is None
    await _check_api(database, client, token, org.id)
    async with database.transaction() as db:
        await organizations.delete_organization(db, system_principal(), org.id)
    await _check(database)
    async with database.transaction(write=False) as db:
        assert not (
            await db.scalars(select(HolderCount).where(HolderCount.organization_id == org.id))
        ).all()


async def _grant(
    db: AsyncSession, org_id: str, user_id: str, ws_id: str, key: str, dep_id: str | None = None
) -> None:
    db.add(
        RoleBinding(
            organization_id=org_id,
            subject_type="user",
            subject_id=user_id,
            role="DEPLOYMENT_ADMIN" if dep_id else "WORKSPACE_MEMBER",
            scope_type="DEPLOYMENT" if dep_id else "WORKSPACE",
            scope_key=key,
            workspace_id=ws_id,
            deployment_id=dep_id,
        )
    )
    await db.flush()


async def test_raw_sql_multi_row_statements_and_updates(database: Database, world: World) -> None:
    org = await world.org()
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    dep = await world.deployment(ws1)
    u, v = await world.user(), await world.user()
    await world.roles(org, u)
    await world.roles(org, v)
    async with database.transaction() as db:  # several bindings of one user in one statement
        db.add_all(
            [
                RoleBinding(
                    organization_id=org.id, subject_type="user", subject_id=u.id, role="R",
                    scope_type="WORKSPACE", scope_key=f"w:{ws1.id}", workspace_id=ws1.id,
                ),
                RoleBinding(
                    organization_id=org.id, subject_type="user", subject_id=u.id, role="R",
                    scope_type="DEPLOYMENT", scope_key=f"d:{dep.id}", workspace_id=ws1.id,
                    deployment_id=dep.id,
                ),
                RoleBinding(
                    organization_id=org.id, subject_type="user", subject_id=v.id, role="R",
                    scope_type="DAG_TAG", scope_key=f"t:{dep.id}", workspace_id=ws1.id,
                    deployment_id=dep.id, dag_tag="pii",
                ),
            ]
        )  # fmt: skip
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws1.id)] == 2
    async with database.transaction() as db:  # move u's workspace role: still in ws1 (dep)
        await db.execute(
            update(RoleBinding)
            .where(RoleBinding.subject_id == u.id, RoleBinding.scope_type == "WORKSPACE")
            .values(workspace_id=ws2.id, scope_key=f"w:{ws2.id}")
        )
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws1.id)] == 2 and counts[(org.id, "workspace", ws2.id)] == 1
    async with database.transaction() as db:  # every ws1 binding at once, then a retag
        await db.execute(
            update(RoleBinding).where(RoleBinding.dag_tag == "pii").values(dag_tag="finance")
        )
        await db.execute(
            update(RoleBinding).where(RoleBinding.subject_id == v.id).values(role="DAG_AUTHOR")
        )
    counts = await _check(database)
    assert counts[(org.id, "dag_tag", "finance")] == 1 and (org.id, "dag_tag", "pii") not in counts
    async with database.transaction() as db:
        await db.execute(delete(RoleBinding).where(RoleBinding.workspace_id == ws1.id))
    counts = await _check(database)
    assert (org.id, "workspace", ws1.id) not in counts


async def test_two_writers_never_count_a_user_twice(database: Database, world: World) -> None:
    """Two transactions give one user two bindings under one workspace at the same time (the
    second commits while the first waits), then take them away at the same time."""
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    u, v = await world.user(), await world.user()
    await world.roles(org, u)
    await world.roles(org, v)

    async def write(gate: asyncio.Event, wrote: asyncio.Event, *grant: str | None) -> None:
        async with database.transaction() as db:
            await _grant(db, *grant)  # type: ignore[arg-type]
            wrote.set()
            await gate.wait()

    async def race(first: tuple[str | None, ...], second: tuple[str | None, ...]) -> None:
        gate, wrote, go = asyncio.Event(), asyncio.Event(), asyncio.Event()
        go.set()
        one = asyncio.create_task(write(gate, wrote, *first))
        await wrote.wait()  # the first transaction wrote (and counted), uncommitted
        two = asyncio.create_task(write(go, asyncio.Event(), *second))
        await asyncio.sleep(0.3)  # the second waits (the user's lock, or SQLite's writer lock)
        gate.set()
        await asyncio.wait_for(asyncio.gather(one, two), 30)

    await race((org.id, u.id, ws.id, f"w:{ws.id}"), (org.id, u.id, ws.id, f"d:{dep.id}", dep.id))
    assert (await _check(database))[(org.id, "workspace", ws.id)] == 1

    await race((org.id, v.id, ws.id, f"w:{ws.id}"), (org.id, v.id, ws.id, f"d:{dep.id}", dep.id))
    assert (await _check(database))[(org.id, "workspace", ws.id)] == 2

    async def revoke(user_id: str, scope_key: str, hold: float) -> None:
        async with database.transaction() as db:
            await db.execute(
                delete(RoleBinding).where(
                    RoleBinding.subject_id == user_id, RoleBinding.scope_key == scope_key
                )
            )
            await asyncio.sleep(hold)

    await asyncio.gather(revoke(u.id, f"w:{ws.id}", 0.3), revoke(u.id, f"d:{dep.id}", 0))
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws.id)] == 1


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite: one writer at a time
async def test_writers_of_one_workspace_do_not_wait_for_each_other(
    database: Database, world: World
) -> None:
    """Two users' roles in one workspace change at once: the second commits while the first
    is still open (0005 made it wait for the first's commit on the workspace's counter row),
    the counts stay exact, and the deltas left while the row was held are folded by the next
    writer."""
    org = await world.org()
    ws = await world.workspace(org)
    u, w = await world.user(), await world.user()
    v = await world.user()
    while await _bucket(database, v.id) == await _bucket(database, u.id):
        v = await world.user()  # users of one lock bucket do wait for each other (1 in 64)
    for user in (u, v, w):
        await world.roles(org, user)
    holding, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with database.transaction() as db:
            await _grant(db, org.id, u.id, ws.id, f"w:{ws.id}")
            holding.set()
            await release.wait()

    one = asyncio.create_task(first())
    await holding.wait()
    async with asyncio.timeout(5):  # 0005: blocked until `first` commits, i.e. forever
        async with database.transaction() as db:
            await _grant(db, org.id, v.id, ws.id, f"w:{ws.id}")
    assert (await _kept(database))[(org.id, "workspace", ws.id)] == 1  # v's, committed
    assert await _deltas(database) >= 1  # the row was held by `first`: not folded
    release.set()
    await one
    assert (await _check(database))[(org.id, "workspace", ws.id)] == 2
    await world.roles(org, w, workspaces=[(ws.id, "WORKSPACE_MEMBER")])
    assert (await _check(database))[(org.id, "workspace", ws.id)] == 3
    assert await _deltas(database) == 0  # the last writer found the row free and folded all


async def _bucket(database: Database, user_id: str) -> int:
    """The user's lock bucket in migration 0009's triggers."""
    async with database.transaction(write=False) as db:
        return int(await db.scalar(text("SELECT hashtext(:u) & 63"), {"u": user_id}) or 0)


async def test_one_statement_for_thousands_of_users(database: Database, world: World) -> None:
    """A grant to 8 000 users in one statement, then its revocation in one: exact counts, and
    on PostgreSQL no lock per user (8 000 would overflow the default lock table of 6 400)."""
    org = await world.org()
    ws = await world.workspace(org)
    async with database.transaction() as db:
        await db.execute(
            text(
                "INSERT INTO role_bindings (organization_id, subject_type, subject_id, role, "
                "scope_type, scope_key, workspace_id, created_at) "
                "SELECT :org, 'user', 'bulk' || n, 'WORKSPACE_MEMBER', 'WORKSPACE', :key, :ws, "
                ":at FROM (WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                "WHERE n < 8000) SELECT n FROM s) AS numbers"
            ),
            {"org": org.id, "key": f"w:{ws.id}", "ws": ws.id, "at": utcnow()},
        )
    assert (await _check(database))[(org.id, "workspace", ws.id)] == 8000
    async with database.transaction() as db:
        await db.execute(delete(RoleBinding).where(RoleBinding.subject_id.like("bulk%")))
    assert (org.id, "workspace", ws.id) not in await _check(database)


async def test_concurrent_role_moves_do_not_deadlock(database: Database, world: World) -> None:
    org = await world.org()
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    a, b = await world.user(), await world.user()
    await world.roles(org, a, workspaces=[(ws1.id, "WORKSPACE_MEMBER")])
    await world.roles(org, b, workspaces=[(ws2.id, "WORKSPACE_MEMBER")])
    await asyncio.gather(
        world.roles(org, a, workspaces=[(ws2.id, "WORKSPACE_MEMBER")]),
        world.roles(org, b, workspaces=[(ws1.id, "WORKSPACE_MEMBER")]),
    )
    counts = await _check(database)
    assert counts[(org.id, "workspace", ws1.id)] == counts[(org.id, "workspace", ws2.id)] == 1


@pytest.mark.parametrize("trust_references", [True, False])
async def test_bulk_load_writes_exact_counts_and_they_stay_kept(
    database: Database, world: World, client: httpx.AsyncClient, trust_references: bool
) -> None:
    """With trust_references PostgreSQL runs no trigger during the load; without, the
    triggers run and skip the organization (paused) while the loader counts."""
    info = await load_organization(
        database,
        users=400,
        workspaces=5,
        deployments_per_workspace=2,
        seed=11,
        trust_references=trust_references,
    )
    counts = await _check(database)
    assert counts[(info.organization_id, "workspace", info.workspace_ids[0])] > 20
    admin = await world.admin()
    token = await world.token(admin)
    async with database.transaction() as db:
        org = await db.get(Organization, info.organization_id)
        someone = await db.scalar(select(User).where(User.id == info.owner_id))
    assert org is not None and someone is not None
    await world.roles(org, someone, workspaces=[(info.workspace_ids[-1], "WORKSPACE_OWNER")])
    async with database.transaction() as db:
        others = select(User.id).where(User.id.not_in([someone.id, admin.id])).limit(1)
        gone = await db.scalar(others)
        assert gone is not None
        await users.delete_user(db, system_principal(), gone)
    await _check_api(database, client, token, info.organization_id)


@pytest.mark.parametrize("tags", [["finance", "ml"]])
async def test_several_tags_or_filters_are_counted(
    database: Database, world: World, client: httpx.AsyncClient, tags: list[str]
) -> None:
    info = await load_organization(
        database, users=300, workspaces=3, deployments_per_workspace=2, seed=3
    )
    admin = await world.admin()
    token = await world.token(admin)
    total, ids = await _listed(client, token, info.organization_id, dagTags=tags)
    assert total == len(ids) > 0
    total, ids = await _listed(
        client, token, info.organization_id, workspaceId=info.workspace_ids[0], dagTags=tags[:1]
    )
    assert total == len(ids) > 0
    async with database.transaction(write=False) as db:
        dep_id = await db.scalar(
            select(RoleBinding.deployment_id).where(
                RoleBinding.workspace_id == info.workspace_ids[0],
                RoleBinding.dag_tag.is_not(None),
            )
        )
    every = {"workspaceId": info.workspace_ids[0], "deploymentId": dep_id, "dagTags": tags}
    total, ids = await _listed(client, token, info.organization_id, **every)
    assert total == len(ids) > 0
    total, ids = await _listed(client, token, info.organization_id, dagId="nope", dagTags=tags)
    assert total == len(ids) > 0
